/*
 * Responder's maps: every element with class "responder-map" becomes a Leaflet map.
 *
 * Data attributes (all read from the element; nothing else is needed on the page):
 *   data-src          URL of the tasks as GeoJSON points (e.g. "/map/data?ward=Northgate"):
 *                     a FeatureCollection whose features' properties carry reference,
 *                     type, priority, status (codes) and overdue; "words" gives the words
 *                     for the codes ({types, priorities, statuses}); "capped": true when
 *                     the server left tasks out.
 *   data-wards        URL of ward boundaries as GeoJSON (e.g. "/map/wards.geojson?ward=X");
 *                     optional. The map fits these boundaries (or the points without them).
 *   data-tiles        tile URL template with {z}, {x}, {y} (Responder's proxy:
 *                     "/tiles/{z}/{x}/{y}.png"; never a tile service's key).
 *   data-attribution  the tile service's attribution, shown on the map (text, not HTML).
 *   data-min-zoom     lowest zoom the tiles allow (default 7).
 *   data-max-zoom     highest zoom the tiles allow (default 19).
 *
 * The page loads, in order: /static/vendor/leaflet/leaflet.js,
 * /static/vendor/markercluster/leaflet.markercluster.js, then this file; and the CSS
 * /static/vendor/leaflet/leaflet.css, the markercluster CSS and /static/map.css.
 *
 * Markers are clustered; each is coloured by priority AND carries a letter (U, H, N, L:
 * the priority's first letter), and an overdue task is a square with "!" (not colour
 * alone); a legend follows the map. Selecting a marker opens a popup linking to the task.
 * A status line after the map says how many tasks are shown, when some were left out,
 * or that the tasks could not be loaded. No inline scripts or styles (the CSP).
 */
(function () {
  "use strict";

  var PRIORITY_CLASSES = { urgent: 1, high: 1, normal: 1, low: 1 };

  function number(value, fallback) {
    var n = parseInt(value, 10);
    return isNaN(n) ? fallback : n;
  }

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function escapeHtml(text) {
    return String(text)
      .replace(/&/g, "&amp;")
      .replace(/</g, "&lt;")
      .replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;")
      .replace(/'/g, "&#39;");
  }

  function fetchJson(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function markerIcon(props) {
    var priority = String(props.priority || "");
    var kind = PRIORITY_CLASSES[priority] ? priority : "other";
    var letter = (priority.charAt(0) || "?").toUpperCase();
    var classes = "responder-marker responder-marker--" + kind;
    if (props.overdue) classes += " responder-marker--overdue";
    return L.divIcon({
      className: classes,
      html: "",
      iconSize: [28, 28],
      iconAnchor: [14, 14],
      popupAnchor: [0, -14],
    });
  }

  // The feature's codes with their words (the answer's "words"), and its page.
  function describe(raw, words) {
    function word(group, code) {
      var table = words[group] || {};
      return Object.prototype.hasOwnProperty.call(table, code) ? table[code] : code;
    }
    return {
      reference: String(raw.reference || ""),
      url: "/tasks/" + encodeURIComponent(String(raw.reference || "")),
      type: raw.type,
      type_name: word("types", raw.type),
      priority: raw.priority,
      priority_words: word("priorities", raw.priority),
      status_words: word("statuses", raw.status),
      overdue: raw.overdue === true,
    };
  }

  function markerLabel(props) {
    return (
      (props.reference || "Task") +
      ", " +
      (props.type_name || props.type || "") +
      ", " +
      (props.priority_words || props.priority || "") +
      (props.overdue ? ", overdue" : "")
    );
  }

  function popupContent(props) {
    var box = element("div", "responder-popup");
    var link = element("a", null, props.reference || "Open the task");
    link.href = props.url;
    var title = element("p", "responder-popup__title");
    title.appendChild(link);
    box.appendChild(title);
    box.appendChild(element("p", null, props.type_name || props.type || ""));
    var line = element("p", null, (props.priority_words || "") + " · " + (props.status_words || ""));
    box.appendChild(line);
    if (props.overdue) box.appendChild(element("p", "responder-popup__overdue", "Overdue"));
    return box;
  }

  function legend() {
    var list = element("ul", "responder-map__legend");
    list.setAttribute("aria-label", "Map key");
    [
      ["urgent", "U", "Urgent priority"],
      ["high", "H", "High priority"],
      ["normal", "N", "Normal priority"],
      ["low", "L", "Low priority"],
    ].forEach(function (entry) {
      var item = element("li");
      var swatch = element("span", "responder-marker responder-marker--" + entry[0] + " responder-map__swatch");
      swatch.setAttribute("aria-hidden", "true");
      swatch.setAttribute("data-letter", entry[1]);
      item.appendChild(swatch);
      item.appendChild(element("span", null, entry[1] + ": " + entry[2]));
      list.appendChild(item);
    });
    var overdue = element("li");
    var square = element("span", "responder-marker responder-marker--normal responder-marker--overdue responder-map__swatch");
    square.setAttribute("aria-hidden", "true");
    square.setAttribute("data-letter", "!");
    overdue.appendChild(square);
    overdue.appendChild(element("span", null, "Square with !: overdue"));
    list.appendChild(overdue);
    return list;
  }

  function init(container) {
    if (container.getAttribute("data-responder-map") === "ready") return;
    container.setAttribute("data-responder-map", "ready");
    if (!container.getAttribute("role")) container.setAttribute("role", "region");
    if (!container.getAttribute("aria-label")) container.setAttribute("aria-label", "Map of the tasks");

    var minZoom = number(container.getAttribute("data-min-zoom"), 7);
    var maxZoom = number(container.getAttribute("data-max-zoom"), 19);
    var status = element("p", "responder-map__status");
    status.setAttribute("role", "status");
    container.insertAdjacentElement("afterend", status);
    status.insertAdjacentElement("afterend", legend());

    var map = L.map(container, { minZoom: minZoom, maxZoom: maxZoom, zoomControl: true });
    var tiles = container.getAttribute("data-tiles");
    if (tiles) {
      map.attributionControl.setPrefix(false);
      L.tileLayer(tiles, {
        minZoom: minZoom,
        maxZoom: maxZoom,
        // Text, not HTML: Leaflet's attribution control would read it as markup.
        attribution: escapeHtml(container.getAttribute("data-attribution") || ""),
      }).addTo(map);
    }
    map.setView([54.5, -2.5], minZoom); // until the wards or the points say where

    var fitted = false;
    var wardsUrl = container.getAttribute("data-wards");
    var wardsLoaded = wardsUrl
      ? fetchJson(wardsUrl).then(function (data) {
          var layer = L.geoJSON(data, {
            interactive: false,
            style: function () {
              return { color: "#0b0c0c", weight: 2, opacity: 0.8, fill: false, dashArray: "6 4" };
            },
          }).addTo(map);
          var bounds = layer.getBounds();
          if (bounds.isValid()) {
            map.fitBounds(bounds, { padding: [12, 12] });
            fitted = true;
          }
        })
      : Promise.resolve();

    var src = container.getAttribute("data-src");
    if (!src) return;
    var clusters = L.markerClusterGroup({ showCoverageOnHover: false, maxClusterRadius: 50 });
    map.addLayer(clusters);
    Promise.all([fetchJson(src), wardsLoaded.catch(function () {})])
      .then(function (results) {
        var data = results[0] || {};
        var features = Array.isArray(data.features) ? data.features : [];
        var words = data.words || {};
        var markers = [];
        features.forEach(function (feature) {
          var coords = feature && feature.geometry && feature.geometry.coordinates;
          if (!coords || coords.length < 2) return;
          var props = describe(feature.properties || {}, words);
          var marker = L.marker([coords[1], coords[0]], {
            icon: markerIcon(props),
            title: markerLabel(props),
            alt: markerLabel(props),
            keyboard: true,
          });
          marker.on("add", function () {
            var el = marker.getElement();
            if (el) {
              el.setAttribute("data-letter", props.overdue ? "!" : (String(props.priority || "?").charAt(0) || "?").toUpperCase());
              el.setAttribute("aria-label", markerLabel(props));
              el.setAttribute("role", "button");
            }
          });
          marker.bindPopup(function () {
            return popupContent(props);
          });
          markers.push(marker);
        });
        clusters.addLayers(markers);
        if (!fitted && markers.length) {
          map.fitBounds(clusters.getBounds(), { padding: [24, 24], maxZoom: Math.min(16, maxZoom) });
        }
        var words = markers.length === 1 ? "1 task on the map." : markers.length + " tasks on the map.";
        if (data.capped) words += " More tasks match than the map shows: choose more filters.";
        if (!markers.length) words = "No tasks to show on the map.";
        status.textContent = words;
      })
      .catch(function () {
        status.textContent = "The tasks could not be loaded onto the map. The list below still shows them.";
        status.className += " responder-map__status--error";
      });
  }

  function start() {
    if (typeof L === "undefined") return;
    var maps = document.querySelectorAll(".responder-map");
    for (var i = 0; i < maps.length; i++) init(maps[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
  // Maps that htmx swaps in later.
  document.addEventListener("htmx:afterSettle", start);
})();
