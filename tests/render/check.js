// Renders one Adaptive Card into #host with Microsoft's renderer and measures what a person
// would see: action labels cut short, and text whose contrast with what is behind it is below
// WCAG's 4.5:1. Loaded by page.html; render.mjs calls these functions through the DevTools
// protocol. Plain browser JavaScript, no build step.
"use strict";

(function () {
  const MIN_CONTRAST = 4.5;
  let current = null; // {card: AdaptiveCards.AdaptiveCard, json, hostConfig}

  // -- colours -----------------------------------------------------------------------------

  // Host configs write colours as #RRGGBB or #AARRGGBB (alpha first, as the renderer reads them).
  function parseHostColour(value) {
    const hex = String(value || "").trim().replace(/^#/, "");
    if (hex.length === 8) {
      const n = (i) => parseInt(hex.slice(i, i + 2), 16);
      return { r: n(2), g: n(4), b: n(6), a: n(0) / 255 };
    }
    if (hex.length === 6) {
      const n = (i) => parseInt(hex.slice(i, i + 2), 16);
      return { r: n(0), g: n(2), b: n(4), a: 1 };
    }
    throw new Error("unreadable host config colour: " + value);
  }

  // getComputedStyle's colours: rgb(r, g, b) / rgba(r, g, b, a) (or "transparent").
  function parseCssColour(value) {
    const m = /rgba?\(([^)]+)\)/.exec(value || "");
    if (!m) return { r: 0, g: 0, b: 0, a: 0 };
    const parts = m[1].split(/[\s,\/]+/).filter(Boolean).map(Number);
    return { r: parts[0], g: parts[1], b: parts[2], a: parts.length > 3 ? parts[3] : 1 };
  }

  function over(top, bottom) {
    // ``top`` (with its alpha) composited over an opaque ``bottom``.
    const a = top.a;
    return {
      r: top.r * a + bottom.r * (1 - a),
      g: top.g * a + bottom.g * (1 - a),
      b: top.b * a + bottom.b * (1 - a),
      a: 1,
    };
  }

  function luminance(c) {
    const lin = (v) => {
      const s = v / 255;
      return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
  }

  function contrast(a, b) {
    const la = luminance(a);
    const lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  function hex(c) {
    const h = (v) => Math.round(v).toString(16).padStart(2, "0");
    return "#" + h(c.r) + h(c.g) + h(c.b);
  }

  // The colour behind ``element``: its own and its ancestors' backgrounds, up to the first
  // opaque one, composited; the card's own background (the host config's default container
  // style) under all of them.
  function backgroundOf(element) {
    const layers = [];
    for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
      const bg = parseCssColour(getComputedStyle(node).backgroundColor);
      if (bg.a > 0) layers.push(bg);
      if (bg.a >= 1) break;
    }
    let colour = { ...current.cardBackground, a: 1 };
    for (let i = layers.length - 1; i >= 0; i--) colour = over(layers[i], colour);
    return colour;
  }

  function opacityOf(element) {
    let opacity = 1;
    for (let node = element; node && node.nodeType === 1; node = node.parentElement) {
      opacity *= parseFloat(getComputedStyle(node).opacity || "1");
    }
    return opacity;
  }

  function visible(element) {
    if (!element.getClientRects().length) return false;
    const rect = element.getBoundingClientRect();
    if (rect.width < 1 || rect.height < 1) return false;
    const style = getComputedStyle(element);
    return style.visibility !== "hidden" && opacityOf(element) > 0;
  }

  function clip(text, n = 80) {
    const t = text.replace(/\s+/g, " ").trim();
    return t.length > n ? t.slice(0, n - 1) + "…" : t;
  }

  // -- rendering ---------------------------------------------------------------------------

  window.setThemeCss = function (href) {
    return new Promise((resolve, reject) => {
      const link = document.getElementById("theme-css");
      link.onload = () => resolve(true);
      link.onerror = () => reject(new Error("could not load " + href));
      link.href = href;
    });
  };

  window.renderCard = async function (json, hostConfigJson, width) {
    window.closeMenu();
    const host = document.getElementById("host");
    host.innerHTML = "";
    host.style.width = width + "px";
    const hostConfig = new AdaptiveCards.HostConfig(hostConfigJson);
    const cardBackground = parseHostColour(hostConfigJson.containerStyles.default.backgroundColor);
    host.style.backgroundColor = hex(cardBackground);

    const card = new AdaptiveCards.AdaptiveCard();
    card.hostConfig = hostConfig;
    const context = new AdaptiveCards.SerializationContext();
    card.parse(json, context);
    const warnings = [];
    for (let i = 0; i < context.eventCount; i++) {
      const e = context.getEventAt(i);
      warnings.push(clip(String(e.message), 200));
    }
    const validation = card.validateProperties();
    for (const e of validation.validationEvents) warnings.push(clip(String(e.message), 200));
    const element = card.render();
    if (!element) throw new Error("the renderer produced nothing");
    host.appendChild(element);
    current = { card, json, hostConfigJson, cardBackground };
    await document.fonts.ready;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    const fontOk = document.fonts.check('14px "Segoe UI"');
    return { warnings, fontOk, dropped: droppedActions(json, hostConfigJson) };
  };

  // Actions the renderer leaves out: more primary actions than the host's maxActions in one
  // action bar (Teams: 6); secondary ones go to the overflow menu. Found from the card's
  // JSON, since they never reach the page.
  function droppedActions(json, hostConfigJson) {
    const max = (hostConfigJson.actions || {}).maxActions;
    const found = [];
    const walk = (node, path) => {
      if (Array.isArray(node)) {
        node.forEach((item, i) => walk(item, path + "/" + i));
      } else if (node && typeof node === "object") {
        for (const [key, value] of Object.entries(node)) {
          if (key === "refresh") continue;
          const primary = Array.isArray(value)
            ? value.filter((a) => String((a && a.mode) || "primary").toLowerCase() !== "secondary")
            : [];
          if (key === "actions" && max && primary.length > max) {
            for (const action of primary.slice(max)) {
              found.push({ label: action.title || action.type, where: path + "/actions" });
            }
          }
          walk(value, path + "/" + key);
        }
      }
    };
    walk(json, "");
    return found;
  }

  // -- show cards and the overflow menu ----------------------------------------------------
  // Both are buttons with aria-expanded: a show card opens inside the card, the overflow
  // button ("...") opens a menu over the page.

  function showCardButtons() {
    return Array.from(document.querySelectorAll("#host button[aria-expanded]")).filter(visible);
  }

  // The visible show-card buttons' labels; each button is numbered (data-show-card) so that
  // toggleShowCard finds the same one after others appear.
  window.showCardTitles = function () {
    return showCardButtons().map((b, i) => {
      b.setAttribute("data-show-card", String(i));
      return b.getAttribute("aria-label") || b.textContent.trim();
    });
  };

  // Click the ``index``th visible show-card button (expanding or collapsing its sub-card).
  window.toggleShowCard = async function (index) {
    const button = document.querySelector(`#host button[data-show-card="${index}"]`);
    if (!button) throw new Error("no show-card button " + index);
    button.click();
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    // The menu fades and slides in (0.5 s): measure it where it ends.
    for (const animation of document.getAnimations()) animation.finish();
    // The menu closes when its overlay gets focus, which taking a screenshot can give it.
    for (const overlay of document.querySelectorAll(".ac-ctrl-overlay")) overlay.onfocus = null;
    return { menu: document.querySelector(".ac-ctrl-popup-container") !== null };
  };

  // -- the checks --------------------------------------------------------------------------

  // (a) Every visible button's label shown whole: not cut by an ellipsis or by overflow, and
  // the button not pushed outside the card.
  function truncatedButtons(host) {
    const hostRect = host.getBoundingClientRect();
    const found = [];
    for (const button of host.querySelectorAll("button, .ac-ctrl-dropdown-item")) {
      if (!visible(button)) continue;
      const label = clip(button.getAttribute("aria-label") || button.textContent || "");
      const viewport = document.documentElement.clientWidth;
      if (button.getBoundingClientRect().right > viewport + 0.5) {
        found.push({ label, reason: `goes past the ${viewport}px screen's edge` });
        continue;
      }
      const title = Array.from(button.children).find((c) => c.tagName === "DIV") || button;
      const rect = button.getBoundingClientRect();
      const reasons = [];
      if (title.scrollWidth > title.clientWidth + 0.5) {
        reasons.push(`label needs ${title.scrollWidth}px, has ${title.clientWidth}px`);
      }
      if (title.scrollHeight > title.clientHeight + 1) {
        reasons.push(`label needs ${title.scrollHeight}px high, has ${title.clientHeight}px`);
      }
      if (title !== button && button.scrollWidth > button.clientWidth + 0.5) {
        reasons.push(`button content needs ${button.scrollWidth}px, has ${button.clientWidth}px`);
      }
      if (host.id === "host" && (rect.right > hostRect.right + 0.5 || rect.left < hostRect.left - 0.5)) {
        reasons.push(`button spans ${Math.round(rect.left)}–${Math.round(rect.right)}px of a ${Math.round(hostRect.width)}px card`);
      }
      let parent = button.parentElement;
      while (parent && parent !== host) {
        if (getComputedStyle(parent).overflowX !== "visible") {
          const p = parent.getBoundingClientRect();
          if (rect.right > p.right + 0.5) {
            reasons.push(`button cut off by its action bar at ${Math.round(p.right)}px (ends at ${Math.round(rect.right)}px)`);
            break;
          }
        }
        parent = parent.parentElement;
      }
      if (reasons.length) found.push({ label, reason: reasons.join("; ") });
    }
    return found;
  }

  // (b) Every visible piece of text (text blocks, facts, rich text, button labels, input
  // values) against its effective background, at least 4.5:1.
  function lowContrast(host) {
    const elements = new Set();
    const walker = document.createTreeWalker(host, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.nodeValue.trim() && node.parentElement) elements.add(node.parentElement);
    }
    for (const input of host.querySelectorAll("input, textarea, select")) {
      const type = (input.getAttribute("type") || "").toLowerCase();
      if (["checkbox", "radio", "hidden"].includes(type)) continue;
      if (input.tagName === "SELECT" ? input.selectedIndex >= 0 : input.value) elements.add(input);
    }
    const found = [];
    for (const element of elements) {
      // A show-card button held open is drawn in the host stylesheet's "expanded" colours (the
      // designer's stand-in for Teams, not the card's); it was measured closed before.
      if (element.closest('button[aria-expanded="true"]') !== null) continue;
      if (element.tagName === "OPTION") continue;
      if (element.tagName !== "SELECT" && element.closest("select") !== null) continue;
      if (!visible(element)) continue;
      const style = getComputedStyle(element);
      const fg = parseCssColour(style.color);
      fg.a *= opacityOf(element);
      const bg = backgroundOf(element);
      const seen = over(fg, bg);
      const ratio = contrast(seen, bg);
      if (ratio + 1e-9 < MIN_CONTRAST) {
        let text;
        if (element.tagName === "SELECT") text = element.options[element.selectedIndex].text;
        else if (element.tagName === "INPUT" || element.tagName === "TEXTAREA") text = element.value;
        else {
          text = Array.from(element.childNodes)
            .filter((n) => n.nodeType === 3)
            .map((n) => n.nodeValue)
            .join(" ");
        }
        found.push({
          text: clip(text),
          colour: style.color,
          shown_as: hex(seen),
          background: hex(bg),
          ratio: Math.round(ratio * 100) / 100,
          size: style.fontSize,
          weight: style.fontWeight,
        });
      }
    }
    return found;
  }

  // The card as it stands (with whichever show card is open).
  window.measure = function () {
    const host = document.getElementById("host");
    return { truncated: truncatedButtons(host), contrast: lowContrast(host) };
  };

  // The overflow menu ("...", Teams' place for secondary actions) when it is open: its items
  // are action labels too.
  window.measureMenu = function () {
    const menus = Array.from(document.querySelectorAll(".ac-ctrl-popup-container"));
    const found = { truncated: [], contrast: [] };
    for (const menu of menus) {
      found.truncated.push(...truncatedButtons(menu));
      found.contrast.push(...lowContrast(menu));
    }
    return found;
  };

  // Close it the way a person would (Escape), so that the renderer knows it is closed.
  window.closeMenu = function () {
    for (const menu of document.querySelectorAll(".ac-ctrl-popup-container")) {
      menu.dispatchEvent(new KeyboardEvent("keydown", { key: "Escape", keyCode: 27, bubbles: true }));
    }
    return document.querySelectorAll(".ac-ctrl-overlay").length === 0;
  };
})();
