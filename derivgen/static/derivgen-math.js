/* derivgen: typesets the math of a handout in the browser, when it was not pre-rendered at
   build time (no node on the building machine). Each formula is a <span class="dg-tex"
   data-display="true|false"> holding its TeX as text; katex.min.js, loaded before this file
   from the same assets directory, renders it in place. Nothing is fetched from the network. */
(function () {
  "use strict";
  function typeset() {
    if (typeof katex === "undefined") {
      console.error("derivgen: katex.min.js did not load; the math stays as TeX");
      return;
    }
    var spans = document.querySelectorAll(".derivgen .dg-tex:not([data-typeset])");
    for (var i = 0; i < spans.length; i++) {
      var el = spans[i];
      var tex = el.textContent;
      var options = { displayMode: el.getAttribute("data-display") === "true", throwOnError: true,
                      strict: "ignore", trust: false, maxSize: 50, maxExpand: 1000 };
      try {
        katex.render(tex, el, options);
      } catch (err) {
        console.error("derivgen: KaTeX cannot render " + JSON.stringify(tex) + ": " + err.message);
        options.throwOnError = false;
        katex.render(tex, el, options);
      }
      el.setAttribute("data-typeset", "");
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", typeset);
  } else {
    typeset();
  }
})();
