// Formatting shared by the live pages: file sizes written as Django's filesizeformat writes them on the server,
// so a value filled in live reads the same as one rendered with the page.
(function () {
  "use strict";

  const UNITS = ["bytes", "KB", "MB", "GB", "TB", "PB"];

  function fileSize(bytes) {
    if (bytes === null || bytes === undefined || bytes === "") return "";
    let value = Number(bytes);
    let unit = 0;
    while (value >= 1024 && unit < UNITS.length - 1) {
      value /= 1024;
      unit += 1;
    }
    if (unit === 0) return (value === 1 ? "1\u00a0byte" : value + "\u00a0bytes");
    return value.toFixed(1) + "\u00a0" + UNITS[unit];
  }

  window.OpsdeckFormat = { fileSize: fileSize };
})();
