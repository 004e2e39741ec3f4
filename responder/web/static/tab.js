/* The Teams tab: single sign-on on /tab, and the team tab's configuration on /tab/config.
   Served from the package; no inline script (the pages' CSP allows none). */
(function () {
  "use strict";

  function show(id) { document.getElementById(id).hidden = false; }
  function hide(id) { document.getElementById(id).hidden = true; }

  function signIn(box) {
    var next = box.getAttribute("data-next") || "/tasks";
    if (next.charAt(0) !== "/" || next.charAt(1) === "/" || next.charAt(1) === "\\") {
      next = "/tasks"; // the server has checked it; never another site all the same
    }
    function failed(reason) {
      hide("tab-working");
      if (reason) { document.getElementById("tab-reason").textContent = reason; }
      show("tab-failed");
    }
    if (typeof microsoftTeams === "undefined") {
      failed("This page works inside Microsoft Teams.");
      return;
    }
    microsoftTeams.app.initialize()
      .then(function () { return microsoftTeams.authentication.getAuthToken(); })
      .then(function (token) {
        return fetch("/auth/teams", {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ token: token })
        });
      })
      .then(function (response) {
        if (response.ok) {
          location.replace(next);
          return null;
        }
        return response.json().then(
          function (body) { failed(body && body.message); },
          function () { failed(null); }
        );
      })
      .catch(function () { failed("Teams did not give Responder your sign-in."); });
  }

  function configure(form) {
    var publicUrl = form.getAttribute("data-public-url") || location.origin;
    var ward = document.getElementById("tab-ward");

    function choice() {
      var picked = form.querySelector("input[name=show]:checked");
      if (!picked) { return null; }
      if (picked.value === "ward") {
        if (!ward || !ward.value) { return null; }
        return {
          path: "/wards/" + encodeURIComponent(ward.value),
          entityId: "ward-" + ward.value,
          name: ward.value
        };
      }
      return {
        path: picked.value,
        entityId: picked.value.slice(1),
        name: picked.getAttribute("data-name")
      };
    }

    function changed() {
      if (ward) { ward.disabled = !document.getElementById("show-ward").checked; }
      if (typeof microsoftTeams !== "undefined") {
        microsoftTeams.pages.config.setValidityState(choice() !== null);
      }
    }

    if (ward) { ward.disabled = true; }
    if (typeof microsoftTeams === "undefined") { return; }
    microsoftTeams.app.initialize().then(function () {
      microsoftTeams.pages.config.registerOnSaveHandler(function (saveEvent) {
        var picked = choice();
        if (!picked) { saveEvent.notifyFailure("Choose what the tab shows."); return; }
        microsoftTeams.pages.config.setConfig({
          contentUrl: publicUrl + "/tab?next=" + encodeURIComponent(picked.path),
          websiteUrl: publicUrl + picked.path,
          entityId: ("responder-" + picked.entityId).slice(0, 64),
          suggestedDisplayName: picked.name
        }).then(
          function () { saveEvent.notifySuccess(); },
          function () { saveEvent.notifyFailure("Teams did not save the tab."); }
        );
      });
      form.addEventListener("change", changed);
      changed();
    });
  }

  var box = document.getElementById("tab-sign-in");
  if (box) { signIn(box); }
  var form = document.getElementById("tab-config");
  if (form) { configure(form); }
}());
