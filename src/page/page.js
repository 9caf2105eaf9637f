"use strict";
(function () {
  var table = document.getElementById("incidents");
  var controls = document.getElementById("incident-controls");
  if (table && controls) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var fc = document.getElementById("f-category");
    var ft = document.getElementById("f-target");
    var fo = document.getElementById("f-ongoing");
    var shown = document.getElementById("f-shown");
    var filter = function () {
      var n = 0;
      rows.forEach(function (r) {
        var ok = (!fc.value || r.dataset.category === fc.value) &&
          (!ft.value || r.dataset.target === ft.value) &&
          (!fo.checked || r.dataset.ongoing === "yes");
        r.hidden = !ok;
        if (ok) { n++; }
      });
      shown.textContent = n + " of " + rows.length + " shown";
    };
    [fc, ft, fo].forEach(function (el) { el.addEventListener("change", filter); });
    controls.hidden = false;
    filter();
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, col) {
      var b = th.querySelector("button");
      if (!b) { return; }
      b.addEventListener("click", function () {
        var desc = th.getAttribute("aria-sort") !== "descending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", desc ? "descending" : "ascending");
        var key = function (r) { return r.cells[col].dataset.v || r.cells[col].textContent; };
        var numeric = th.classList.contains("n");
        rows.sort(function (a, x) {
          var p = key(a), q = key(x);
          var c = numeric ? Number(p) - Number(q) : (p < q ? -1 : p > q ? 1 : 0);
          return desc ? -c : c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  }
  Array.prototype.forEach.call(document.querySelectorAll("button.copy"), function (b) {
    b.hidden = false;
    b.addEventListener("click", function () {
      var text = document.getElementById(b.dataset.copy).textContent;
      var done = function () { b.textContent = "Copied"; };
      if (navigator.clipboard) {
        navigator.clipboard.writeText(text).then(done, function () { b.textContent = "Select and copy"; });
      } else {
        b.textContent = "Select and copy";
      }
    });
  });
})();
