// The periodic task form in the admin (templates/admin/core/periodictask_change_form.html): the chosen crontab's
// schedule in words under the crontab field, as django-celery-beat's own inline script does.
(function () {
  "use strict";
  const script = document.currentScript;
  const data = document.getElementById("readable-crontabs");
  const select = document.getElementById("id_crontab");
  if (!data || !select) return;
  const readable = JSON.parse(data.textContent);
  const translation = document.querySelector(".field-crontab_translation");
  if (translation) translation.style.display = "none";
  select.addEventListener("change", function () {
    const help = document.querySelector(".field-crontab .help");
    if (!help) return;
    // Text nodes, not HTML: a crontab's description is data.
    help.replaceChildren(
      document.createTextNode(script.dataset.crontabHelp || ""),
      document.createElement("br"),
      document.createTextNode("Translation: " + (readable[select.value] || ""))
    );
  });
})();
