// Object paths in table cells (Service.spec.ports[].targetPort) have no spaces, so a table column
// holding them is either as wide as the longest path or broken at arbitrary letters. Offer the
// browser a line break after each "." and "/" instead (<wbr> elements: copying the text copies no
// extra characters); course.css lets such code wrap only there on wide screens.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("table code.literal span.pre").forEach(function (span) {
    var text = span.textContent;
    if (!/[./]/.test(text)) { return; }
    span.textContent = "";
    text.split(/(?<=[./])/).forEach(function (part, i) {
      if (i > 0) { span.appendChild(document.createElement("wbr")); }
      span.appendChild(document.createTextNode(part));
    });
  });
});
