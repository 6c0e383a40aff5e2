// The new-event form: "Fill from name" asks the server for the last harvested TNS or Gaia
// position of the name typed and fills RA and Dec, without submitting; it says where they came from.
(function () {
  "use strict";
  var button = document.getElementById("fill-from-name");
  if (!button) return;
  var status = document.getElementById("position-from");
  var name = document.getElementById("id_EventID");
  var ra = document.getElementById("id_ra");
  var dec = document.getElementById("id_dec");

  function say(text, failed) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(failed));
  }

  button.addEventListener("click", function () {
    var typed = name.value.trim();
    if (!typed) {
      say("Type a TNS or Gaia name first (2024abc, Gaia16aye).", true);
      return;
    }
    button.disabled = true;
    say("Looking up " + typed + "…");
    fetch(button.dataset.url + "?name=" + encodeURIComponent(typed), {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().then(function (body) {
          return { ok: response.ok, body: body };
        });
      })
      .then(function (answer) {
        if (!answer.ok) {
          say(answer.body.error ? answer.body.error.message : "Not found.", true);
          return;
        }
        ra.value = answer.body.ra;
        dec.value = answer.body.dec;
        say("Position from " + answer.body.position_from + ".");
      })
      .catch(function () {
        say("The server did not answer; type RA and Dec.", true);
      })
      .finally(function () {
        button.disabled = false;
      });
  });
})();
