// Live updates: the server pushes the dashboard's body again (Server-Sent Events) when the
// customer's usage moves; EventSource reconnects by itself when a stream ends.
(function () {
  "use strict";
  var main = document.getElementById("dashboard");
  var status = document.getElementById("live-status");
  if (!main || !window.EventSource) { return; }
  var source = new EventSource(main.getAttribute("data-stream"));
  source.onmessage = function (event) {
    main.innerHTML = event.data;
    status.textContent = "Updated at " + new Date().toLocaleTimeString();
  };
})();
