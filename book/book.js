// mmkit book: step through the frame sequences of the steppers and era
// comparisons (mmkit.static.frames_html).  Plain JavaScript, no library;
// without it every frame shows, one under the other.
(function () {
  "use strict";
  function setup(box) {
    var frames = Array.prototype.slice.call(box.querySelectorAll(":scope > .mm-frame"));
    if (frames.length < 2) return;
    var eras = [];
    frames.forEach(function (f) { var e = f.getAttribute("data-era") || ""; if (eras.indexOf(e) < 0) eras.push(e); });
    var era = eras[0];
    var n = parseInt(box.getAttribute("data-steps"), 10), i = 0;
    var bar = document.createElement("div");
    bar.className = "mm-frames-controls";
    function button(label, cls, title) {
      var b = document.createElement("button");
      b.type = "button"; b.textContent = label; b.className = cls; b.title = title;
      bar.appendChild(b); return b;
    }
    var first = button("↺ start", "mm-first", "back to the start");
    var prev = button("◀ back", "mm-prev", "the step before");
    var next = button("step ▶", "mm-next", "the next step");
    var range = document.createElement("input");
    range.type = "range"; range.min = 0; range.max = n; range.value = 0; range.className = "mm-range";
    range.setAttribute("aria-label", "step");
    bar.appendChild(range);
    var select = null;
    if (eras.length > 1) {
      select = document.createElement("select");
      select.className = "mm-era"; select.setAttribute("aria-label", "era");
      eras.forEach(function (e) {
        var o = document.createElement("option"); o.value = e; o.textContent = "era " + e; select.appendChild(o);
      });
      select.addEventListener("change", function () { era = select.value; show(i); });
      bar.appendChild(select);
    }
    var label = document.createElement("span");
    label.className = "mm-frames-label";
    bar.appendChild(label);
    var title = box.querySelector(":scope > .mm-frames-title");
    box.insertBefore(bar, title ? title.nextSibling : box.firstChild);
    function show(k) {
      i = Math.max(0, Math.min(n, k));
      frames.forEach(function (f) {
        f.classList.toggle("mm-current", (f.getAttribute("data-era") || "") === era &&
                                         parseInt(f.getAttribute("data-step"), 10) === i);
      });
      range.value = i; label.textContent = "step " + i + "/" + n;
      first.disabled = prev.disabled = i === 0; next.disabled = i === n;
      box.setAttribute("data-current", String(i));
      box.setAttribute("data-current-era", era);
    }
    first.addEventListener("click", function () { show(0); });
    prev.addEventListener("click", function () { show(i - 1); });
    next.addEventListener("click", function () { show(i + 1); });
    range.addEventListener("input", function () { show(parseInt(range.value, 10)); });
    box.addEventListener("keydown", function (e) {
      if (e.target === range) return;
      if (e.key === "ArrowRight") { show(i + 1); e.preventDefault(); }
      else if (e.key === "ArrowLeft") { show(i - 1); e.preventDefault(); }
      else if (e.key === "Home") { show(0); e.preventDefault(); }
      else if (e.key === "End") { show(n); e.preventDefault(); }
    });
    box.classList.add("mm-js");
    show(0);
  }
  function init() { document.querySelectorAll(".mm-frames").forEach(setup); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
