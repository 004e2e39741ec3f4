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
})();
