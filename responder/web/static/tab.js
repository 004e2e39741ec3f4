/* The Teams tab: single sign-on on /tab, and the team tab's configuration on /tab/config.
   Served from the package; no inline script (the pages' CSP allows none).

   The Teams JavaScript library (served from /static/vendor/teams-js/) is loaded only when
   the page is inside a Teams host (a frame, or Teams mobile's web view): on load it asks
   Microsoft's CDN for the hosts' current list, which a page opened on its own has no use
   for. Outside Teams the page says so at once. */
(function () {
  "use strict";

  function show(id) { document.getElementById(id).hidden = false; }
  function hide(id) { document.getElementById(id).hidden = true; }

  function inTeamsHost() {
    try {
      return window.parent !== window || Boolean(window.nativeInterface);
    } catch (e) {
      return true; // a cross-origin parent: a frame all the same
    }
  }

  function withTeams(ready, outside) {
    if (!inTeamsHost()) { outside(); return; }
    var me = document.getElementById("tab-script");
    var script = document.createElement("script");
    script.src = me.getAttribute("data-teams-js");
    script.onload = function () {
      microsoftTeams.app.initialize().then(ready, outside);
    };
    script.onerror = outside;
    document.body.appendChild(script);
  }

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
    withTeams(function () {
      microsoftTeams.authentication.getAuthToken()
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
    }, function () {
      failed("This page signs you in inside Microsoft Teams, and it is not open in Teams.");
    });
  }

  function configure(form) {
    var publicUrl = form.getAttribute("data-public-url") || location.origin;
    var ward = document.getElementById("tab-ward");
    var wardChoice = document.getElementById("show-ward");

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
      if (ward) { ward.disabled = !(wardChoice && wardChoice.checked); }
      if (typeof microsoftTeams !== "undefined") {
        microsoftTeams.pages.config.setValidityState(choice() !== null);
      }
    }

    if (ward) { ward.disabled = true; }
    form.addEventListener("change", changed);
    withTeams(function () {
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
      changed();
    }, function () { show("tab-outside"); });
  }

  var box = document.getElementById("tab-sign-in");
  if (box) { signIn(box); }
  var form = document.getElementById("tab-config");
  if (form) { configure(form); }
}());
