// The admin's pages: Django's two-list selector (groups, permissions) labels its search icons with aria-label on a
// bare span, which assistive technology ignores; give those icons the role of an image once the selector is built.
window.addEventListener("load", function () {
  "use strict";
  window.setTimeout(function () {
    document.querySelectorAll(".help-tooltip[aria-label]:not([role])").forEach(function (icon) {
      icon.setAttribute("role", "img");
    });
  });
});
