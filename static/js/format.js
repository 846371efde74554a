// Formatting shared by the portal and the admin, so that a value filled in live reads the same as one rendered
// with the page: file sizes as Django's filesizeformat writes them, numbers with thousands separators, counted
// nouns in singular or plural, and date-times in the viewer's own time zone. Loaded on every page (UNFOLD
// "SCRIPTS"): every <time datetime> on the page, or added to it later, is rewritten into the viewer's zone.
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

  function number(value) {
    return Number(value).toLocaleString("en-US");
  }

  // "1 job", "2 jobs", "100,000 shots"; `plural` for nouns that do not just take an "s".
  function count(value, singular, plural) {
    return number(value) + " " + (Number(value) === 1 ? singular : plural || singular + "s");
  }

  const PARTS = { day: "numeric", month: "short", year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" };

  // The zone's abbreviation: en-US knows the American ones (EST), en-GB the European ones (CET, BST); a zone
  // neither names reads as its offset (GMT+9).
  function zoneName(date) {
    const names = ["en-US", "en-GB"].map(function (locale) {
      const parts = new Intl.DateTimeFormat(locale, { timeZoneName: "short" }).formatToParts(date);
      return parts.find(function (part) { return part.type === "timeZoneName"; }).value;
    });
    return names.find(function (name) { return !/^GMT[+\-\u2212]/.test(name); }) || names[0];
  }

  function localParts(date) {
    const parts = {};
    new Intl.DateTimeFormat("en-US", PARTS).formatToParts(date).forEach(function (part) {
      parts[part.type] = part.value;
    });
    return parts;
  }

  // "7 Dec 2026, 14:03 CET" in the browser's zone: the shape apps/core/formatting.py gives the server's text.
  function dateTime(iso) {
    if (!iso) return "";
    const date = new Date(iso);
    const parts = localParts(date);
    return parts.day + " " + parts.month + " " + parts.year + ", " + parts.hour + ":" + parts.minute + " " + zoneName(date);
  }

  // "14:03" in the browser's zone, for labels next to full date-times (a chart's axis).
  function clock(iso) {
    const parts = localParts(new Date(iso));
    return parts.hour + ":" + parts.minute;
  }

  // A <time> element for `iso`, for scripts that add a date-time to the page.
  function timeElement(iso) {
    const element = document.createElement("time");
    element.dateTime = iso;
    element.textContent = dateTime(iso);
    return element;
  }

  function localizeTimes(root) {
    if (root.matches && root.matches("time[datetime]")) root.textContent = dateTime(root.dateTime);
    if (root.querySelectorAll) {
      root.querySelectorAll("time[datetime]").forEach(function (element) {
        element.textContent = dateTime(element.dateTime);
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    localizeTimes(document);
    // Rows and fragments added live carry the server's text: rewrite them as they arrive.
    new MutationObserver(function (records) {
      records.forEach(function (record) {
        record.addedNodes.forEach(function (node) {
          if (node.nodeType === Node.ELEMENT_NODE) localizeTimes(node);
        });
      });
    }).observe(document.body, { childList: true, subtree: true });
  });

  window.OpsdeckFormat = { fileSize: fileSize, number: number, count: count, dateTime: dateTime, clock: clock, timeElement: timeElement };
})();
