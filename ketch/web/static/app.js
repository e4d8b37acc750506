// Ketch website: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";

  // Copy buttons: <button class="copy" data-copy="#id"> copies the text of the element #id.
  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "visually-hidden";
    document.body.appendChild(area);
    area.select();
    try { document.execCommand("copy"); } finally { document.body.removeChild(area); }
    return Promise.resolve();
  }
  document.querySelectorAll("button.copy").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var target = document.querySelector(button.getAttribute("data-copy"));
      if (!target) return;
      copyText(target.textContent.trim()).then(function () {
        var label = button.textContent;
        button.textContent = "Copied";
        button.classList.add("done");
        setTimeout(function () { button.textContent = label; button.classList.remove("done"); }, 1500);
      });
    });
  });

  // Tab lists (install box): arrow keys move between tabs, the selected tab shows its panel.
  document.querySelectorAll("[data-tabs]").forEach(function (box) {
    var tabs = Array.prototype.slice.call(box.querySelectorAll("[role=tab]"));
    var list = box.querySelector("[role=tablist]");
    if (list) list.hidden = false;
    function select(tab, focus) {
      tabs.forEach(function (t) {
        var on = t === tab;
        t.setAttribute("aria-selected", on ? "true" : "false");
        t.tabIndex = on ? 0 : -1;
        var panel = document.getElementById(t.getAttribute("aria-controls"));
        if (panel) panel.hidden = !on;
      });
      if (focus) tab.focus();
    }
    tabs.forEach(function (tab, i) {
      tab.addEventListener("click", function () { select(tab, false); });
      tab.addEventListener("keydown", function (e) {
        var next = null;
        if (e.key === "ArrowRight") next = tabs[(i + 1) % tabs.length];
        else if (e.key === "ArrowLeft") next = tabs[(i - 1 + tabs.length) % tabs.length];
        else if (e.key === "Home") next = tabs[0];
        else if (e.key === "End") next = tabs[tabs.length - 1];
        if (next) { e.preventDefault(); select(next, true); }
      });
    });
    if (tabs.length) select(tabs[0], false);
  });

  function typing(e) {
    var t = e.target;
    return t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
  }

  // "/" focuses the search box from anywhere.
  document.addEventListener("keydown", function (e) {
    if (e.key === "/" && !typing(e) && !e.ctrlKey && !e.metaKey && !e.altKey) {
      var box = document.querySelector("input[type=search]");
      if (box) { e.preventDefault(); box.focus(); box.select(); }
    }
  });

  // Search results: j/k or ArrowDown/ArrowUp move between results, Enter opens one.
  var results = document.querySelector("[data-results]");
  if (results) {
    var items = Array.prototype.slice.call(results.querySelectorAll(":scope > li"));
    var current = -1;
    function move(to) {
      if (!items.length) return;
      current = Math.max(0, Math.min(items.length - 1, to));
      items.forEach(function (li, i) { li.classList.toggle("selected", i === current); });
      var link = items[current].querySelector("a.name");
      if (link) link.focus();
    }
    document.addEventListener("keydown", function (e) {
      if (e.ctrlKey || e.metaKey || e.altKey) return;
      if (typing(e)) {
        if (e.key === "ArrowDown" && e.target.type === "search") { e.preventDefault(); move(0); }
        return;
      }
      if (e.key === "j" || e.key === "ArrowDown") { e.preventDefault(); move(current + 1); }
      else if (e.key === "k" || e.key === "ArrowUp") { e.preventDefault(); move(current - 1); }
    });
    items.forEach(function (li, i) {
      li.addEventListener("focusin", function () {
        current = i;
        items.forEach(function (other, j) { other.classList.toggle("selected", j === i); });
      });
    });
  }
})();
