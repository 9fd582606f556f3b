// Tell RequireJS where the vendored widget manager lives (tools/vendor.sh puts it in
// _static/vendor/html-manager). Its bundled modules (@jupyter-widgets/html-manager/dist/...,
// @jupyter-widgets/controls, @jupyter-widgets/base) find their fonts relative to their own module
// URL; without this mapping that URL is relative to the page and the font requests 404.
(function () {
  var here = document.currentScript && document.currentScript.src;
  if (!here || typeof require === "undefined" || !require.config) { return; }
  var base = here.replace(/widgets-config\.js(\?.*)?$/, "vendor/html-manager");
  require.config({ paths: { "@jupyter-widgets/html-manager/dist": base, "@jupyter-widgets": base } });
})();
