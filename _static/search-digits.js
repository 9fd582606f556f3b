// Let the site search find port numbers. Sphinx's searchtools.js drops every query word made only
// of digits ("8080", "30080") before looking it up, although its index contains those words; a
// course about ports must find them. This wraps Search._parseQuery and adds the digit-only words
// back as required terms (and as terms to highlight). Runs before searchtools' own DOMContentLoaded
// handler, which performs the query on search.html.
(function () {
  function patch() {
    if (typeof Search === "undefined" || typeof splitQuery === "undefined" || Search._digitsPatched) { return; }
    var parse = Search._parseQuery;
    Search._parseQuery = function (query) {
      var parsed = parse.call(Search, query);
      splitQuery(query.trim()).forEach(function (term) {
        if (/^\d+$/.test(term)) { parsed[1].add(term); parsed[3].add(term); }
      });
      return parsed;
    };
    Search._digitsPatched = true;
  }
  patch();
  document.addEventListener("DOMContentLoaded", patch);
})();
