/* The task page: let htmx show the answer to a refused or stale form (400, 403, 409, 422
   carry the task panel with what went wrong), and move focus to what the page now says. */
(function () {
  "use strict";
  var SHOWN = [400, 403, 409, 422];
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    if (SHOWN.indexOf(event.detail.xhr.status) !== -1) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var panel = document.getElementById("task-panel");
    if (!panel) { return; }
    var said = panel.querySelector(".notice");
    var target = said || panel.querySelector("h1");
    if (target) {
      target.setAttribute("tabindex", "-1");
      target.focus();
    }
  });
})();
