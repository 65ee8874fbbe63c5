// The dashboard's own script: skip swapping a polled panel whose answer did not change,
// show refusals, and draw each route's traffic per backend with uPlot.
(function () {
  "use strict";

  // A polled panel is swapped only when its HTML changed: no flicker, no lost hover.
  var lastAnswer = new WeakMap();
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var detail = event.detail;
    var target = detail.target;
    var status = detail.xhr.status;
    if (status === 401) {
      window.location.reload(); // the session ended: back to the sign-in form
      return;
    }
    if (status === 409) {
      // a refused edit or command: its reason is the answer
      detail.shouldSwap = true;
      detail.isError = false;
      return;
    }
    if (target && target.hasAttribute("data-poll") && status === 200) {
      if (lastAnswer.get(target) === detail.serverResponse) {
        detail.shouldSwap = false;
      } else {
        lastAnswer.set(target, detail.serverResponse);
      }
    }
  });

  var COLORS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1"];
  var METRICS = [
    { key: "rate", title: "requests/s", unit: "/s" },
    { key: "errors", title: "errors %", unit: " %" },
    { key: "p50", title: "p50 ms", unit: " ms" },
    { key: "p99", title: "p99 ms", unit: " ms" },
  ];
  var charts = {}; // "route/metric" -> {plot, backends}

  function chartFor(box, route, metric, backends) {
    var id = route + "/" + metric.key;
    var known = charts[id];
    if (known && known.backends.join() === backends.join()) {
      return known.plot;
    }
    if (known) {
      known.plot.destroy();
    }
    var holder = box.querySelector('[data-metric="' + metric.key + '"]');
    holder.innerHTML = "";
    var series = [{}].concat(
      backends.map(function (name, i) {
        return {
          label: name,
          stroke: COLORS[i % COLORS.length],
          width: 1.5,
          spanGaps: false,
          value: function (u, v) {
            return v == null ? "—" : v.toFixed(metric.key === "rate" ? 1 : 2) + metric.unit;
          },
        };
      })
    );
    var plot = new uPlot(
      {
        title: metric.title,
        width: 300,
        height: 150,
        series: series,
        legend: { live: false },
        scales: { x: { time: true } },
        axes: [{ space: 60 }, { size: 50 }],
      },
      [[]].concat(backends.map(function () { return []; })),
      holder
    );
    charts[id] = { plot: plot, backends: backends.slice() };
    return plot;
  }

  function rowFor(container, route) {
    var row = container.querySelector('.chart-row[data-route="' + CSS.escape(route) + '"]');
    if (row) {
      return row;
    }
    row = document.createElement("div");
    row.className = "chart-row";
    row.dataset.route = route;
    var name = document.createElement("h3");
    name.textContent = route;
    row.appendChild(name);
    METRICS.forEach(function (metric) {
      var holder = document.createElement("div");
      holder.className = "chart";
      holder.dataset.metric = metric.key;
      row.appendChild(holder);
    });
    container.appendChild(row);
    return row;
  }

  function draw(container, data) {
    var wanted = {};
    data.order.forEach(function (entry) {
      wanted[entry.route] = true;
      var row = rowFor(container, entry.route);
      container.appendChild(row); // keeps the evaluation order
      var measured = (data.routes[entry.route] || { backends: {} }).backends;
      METRICS.forEach(function (metric) {
        var plot = chartFor(row, entry.route, metric, entry.backends);
        var columns = [data.t].concat(
          entry.backends.map(function (name) {
            var rows = measured[name];
            return rows ? rows[metric.key] : data.t.map(function () { return null; });
          })
        );
        plot.setData(columns);
      });
    });
    Array.prototype.slice.call(container.querySelectorAll(".chart-row")).forEach(function (row) {
      if (!wanted[row.dataset.route]) {
        METRICS.forEach(function (metric) {
          var id = row.dataset.route + "/" + metric.key;
          if (charts[id]) {
            charts[id].plot.destroy();
            delete charts[id];
          }
        });
        row.remove();
      }
    });
    container.dataset.samples = String(data.t.length);
  }

  function poll() {
    var container = document.getElementById("charts");
    if (!container) {
      return;
    }
    fetch(container.dataset.series, { credentials: "same-origin", cache: "no-store" })
      .then(function (answer) {
        if (answer.status === 401) {
          window.location.reload();
          return null;
        }
        return answer.ok ? answer.json() : null;
      })
      .then(function (data) {
        if (data) {
          draw(container, data);
        }
      })
      .catch(function () {})
      .finally(function () {
        window.setTimeout(poll, 2000);
      });
  }

  poll();
})();
