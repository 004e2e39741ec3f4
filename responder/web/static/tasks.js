/* /tasks: htmx swaps a 400 (the filters' error summary) into #results like a 200, and
   moves focus to the summary so it is read out. No inline scripts: the CSP forbids them. */
(function () {
  "use strict";
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (event.detail.xhr && event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var summary = event.detail.target && event.detail.target.querySelector(".error-summary");
    if (summary) {
      summary.focus();
    }
  });

  // Phones: the filter form would fill the whole first screen, so it folds behind a
  // button, open when a filter is in use (or an error shown). Wider screens: always open.
  var form = document.querySelector("form.filters");
  var heading = form && form.querySelector(".filters__heading");
  if (heading && window.matchMedia("(max-width: 40rem)").matches) {
    var panel = document.createElement("div");
    panel.id = "filters-panel";
    while (heading.nextSibling) {
      panel.appendChild(heading.nextSibling);
    }
    var toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "button button--secondary filters__toggle";
    toggle.setAttribute("aria-controls", panel.id);
    var inUse = false;
    new URLSearchParams(window.location.search).forEach(function (value, name) {
      if (value && name !== "in" && name !== "after") {
        inUse = true;
      }
    });
    var show = function (open) {
      panel.hidden = !open;
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      toggle.textContent = open ? "Hide filters" : "Show filters";
    };
    heading.insertAdjacentElement("afterend", toggle);
    form.appendChild(panel);
    show(inUse || document.querySelector(".error-summary") !== null);
    toggle.addEventListener("click", function () {
      show(panel.hidden);
    });
  }
})();
