// tito's MathJax settings for feedback pages and the formgrader, read by MathJax.js when it loads. A file of its
// own because those pages run no inline script. jupyter_server_mathjax ships the STIX-Web fonts only.
window.MathJax = {
  tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]], processEscapes: true},
  "HTML-CSS": {availableFonts: [], webFont: "STIX-Web", imageFont: null},
  SVG: {font: "STIX-Web"},
  messageStyle: "none"
};
