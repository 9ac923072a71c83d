// PatchCTL dashboard: the one script, built into the binary. The pages are complete
// without it; it only adds a live refresh to pages that ask for one with
// <body data-refresh="SECONDS"> (a command in flight), and never while a form field
// has the focus.
(function () {
  "use strict";
  var secs = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (secs > 0) {
    window.setTimeout(function tick() {
      var a = document.activeElement;
      if (a && (a.tagName === "INPUT" || a.tagName === "SELECT" || a.tagName === "TEXTAREA")) {
        window.setTimeout(tick, secs * 1000);
        return;
      }
      window.location.reload();
    }, secs * 1000);
  }
})();
