// Waits for the wallet's decision, then continues: to the service (the answer's location,
// given only to the browser that started the sign-in), or else to the sign-in's page. Each status request
// is held by the server until the decision (or sign_in.decision_wait_seconds, 25 s by default),
// so the page asks again at once when it answers "pending"; never more than once a second, and
// after 2 s when it fails.
// The first request goes a second after the page loads: nobody approves sooner, and a page
// that a status answer sent back to itself cannot reload faster than that.
(function () {
  var script = document.currentScript;
  var statusUrl = script.getAttribute("data-status") + "?wait=1";
  var pageUrl = script.getAttribute("data-page");
  // The page may have been served by /authorize: show (and reload) the sign-in's own URL,
  // which is also what the wallet accepts.
  if (window.location.href !== pageUrl && window.history && window.history.replaceState) {
    window.history.replaceState(null, "", pageUrl);
  }
  function poll() {
    var asked = Date.now();
    fetch(statusUrl, { cache: "no-store" })
      .then(function (response) { return response.json(); })
      .then(function (body) {
        if (body.status === "pending") {
          setTimeout(poll, Math.max(0, 1000 - (Date.now() - asked)));
        } else {
          window.location.replace(body.location || pageUrl);
        }
      })
      .catch(function () { setTimeout(poll, 2000); });
  }
  setTimeout(poll, 1000);
})();
