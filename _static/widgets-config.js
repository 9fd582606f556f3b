// Tell RequireJS where the vendored widget manager lives (tools/vendor.sh puts it in
// _static/vendor/html-manager). The manager finds its fonts relative to its module URL; without
// this mapping that URL is relative to the page and every font request 404s.
(function () {
  var here = document.currentScript && document.currentScript.src;
  if (!here || typeof require === "undefined" || !require.config) { return; }
  var base = here.replace(/widgets-config\.js(\?.*)?$/, "vendor/html-manager");
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": base } });
})();
