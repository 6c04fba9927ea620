// The spend_limits dashboard's form: sends the limits typed (in dollars, as text) to the page's
// own URL + "/limits" as JSON; the URL's signed capability is what authorizes it (no cookies).
// The answer carries the panel rendered again, shown at once; a refusal is shown as it is worded.
(function () {
  "use strict";
  var form = document.getElementById("limits-form");
  var main = document.getElementById("dashboard");
  var message = document.getElementById("limits-message");
  if (!form || !main || !window.fetch) { return; }
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    message.className = "message";
    message.textContent = "Saving...";
    var body = { soft_limit: form.soft_limit.value, hard_limit: form.hard_limit.value };
    fetch(form.getAttribute("data-action"), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
      credentials: "omit",
    }).then(function (response) {
      return response.json().then(function (answer) { return { ok: response.ok, answer: answer }; });
    }).then(function (result) {
      if (!result.ok) {
        message.className = "message error";
        message.textContent = result.answer.message;
        return;
      }
      main.innerHTML = result.answer.body;
      message.textContent = "Limits saved.";
    }).catch(function () {
      message.className = "message error";
      message.textContent = "The limits could not be saved. Try again.";
    });
  });
})();
