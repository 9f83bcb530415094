// tito's MathJax settings for feedback pages, read by MathJax.js when it loads. A file of its own because the
// pages run no inline script.
window.MathJax = {
  tex2jax: {inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]], processEscapes: true},
  messageStyle: "none"
};
