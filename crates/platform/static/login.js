// Polls the sign-in's status and continues once the wallet has decided.
(function () {
  var script = document.currentScript;
  var statusUrl = script.getAttribute("data-status");
  var pageUrl = script.getAttribute("data-page");
  // The page may have been served by /authorize: show (and reload) the sign-in's own URL,
  // which is also what the wallet accepts.
  if (window.location.href !== pageUrl && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", pageUrl);
  }
  function poll() {
    fetch(statusUrl, { cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (body.status === "pending") { setTimeout(poll, 1000); } else { window.location.replace(pageUrl); }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
