// Copy buttons: <button data-copy-target="ID"> copies the text of the element with that id (a list: one line per
// item) and says "Copied" for a moment.
(function () {
  "use strict";

  function copyBySelection(target) {
    // The clipboard API needs a secure context (HTTPS or localhost); elsewhere the browser copies a selection.
    const range = document.createRange();
    range.selectNodeContents(target);
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    const copied = document.execCommand("copy");
    selection.removeAllRanges();
    return copied ? Promise.resolve() : Promise.reject(new Error("copy refused"));
  }

  function copyText(target) {
    const text = target.innerText.trim();
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text).catch(function () {
        return copyBySelection(target);
      });
    }
    return copyBySelection(target);
  }

  document.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-copy-target]");
    if (!button) {
      return;
    }
    const target = document.getElementById(button.dataset.copyTarget);
    if (!target) {
      return;
    }
    button.dataset.label = button.dataset.label || button.textContent;
    copyText(target).then(
      function () {
        button.textContent = "Copied";
      },
      function () {
        button.textContent = "Select and copy by hand";
      }
    );
    window.clearTimeout(Number(button.dataset.timer));
    button.dataset.timer = window.setTimeout(function () {
      button.textContent = button.dataset.label;
    }, 2000);
  });
})();
