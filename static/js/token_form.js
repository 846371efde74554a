// The new-token form: preset buttons fill the expiry date; "Never expires" sets the date aside.
(function () {
  "use strict";

  const date = document.getElementById("id_expires_on");
  const never = document.getElementById("id_never_expires");

  document.querySelectorAll("button[data-expiry-date]").forEach(function (button) {
    button.addEventListener("click", function () {
      date.value = button.dataset.expiryDate;
      date.disabled = false;
      if (never) {
        never.checked = false;
      }
    });
  });

  if (never) {
    never.addEventListener("change", function () {
      date.disabled = never.checked;
    });
  }
})();
