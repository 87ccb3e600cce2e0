/* Chart.js helpers of the Trends pages (and the health panel). Plain JS, no build step. */
window.segCharts = {
  palette: ["#2f6fed", "#1f8a4c", "#e0a100", "#c0392b", "#8e44ad", "#7f8c8d", "#16a085"],

  // A colour, lighter: the current period, partial so far, is drawn this way.
  faded: function (hex) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + ",0.35)";
  },

  // Aligns sparse [date, value] points on the full list of day labels (the health panel).
  align: function (labels, points, fill) {
    var map = {};
    points.forEach(function (p) { map[p[0]] = p[1]; });
    return labels.map(function (l) { return l in map ? map[l] : fill; });
  },

  // Sparse [date, value] series on day labels (the health panel's chart).
  draw: function (id, type, labels, series, opts) {
    var el = document.getElementById(id);
    if (!el) { return; }
    var self = this;
    var datasets = series.map(function (s, i) {
      return {
        label: s.label,
        data: opts.sparse ? s.points.map(function (p) { return { x: p[0], y: p[1] }; })
          : self.align(labels, s.points, opts.fill === undefined ? 0 : opts.fill),
        backgroundColor: self.palette[i % self.palette.length],
        borderColor: self.palette[i % self.palette.length],
        spanGaps: true, tension: 0.2, pointRadius: 2
      };
    });
    new Chart(el, {
      type: type,
      data: { labels: opts.sparse ? undefined : labels, datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: {
          x: { stacked: !!opts.stacked, type: "category", ticks: { maxTicksLimit: 12 } },
          y: { stacked: !!opts.stacked, beginAtZero: true }
        },
        plugins: { legend: { position: "bottom" } }
      }
    });
  },

  // Series already aligned on the page's buckets ({label, values}); the last bucket, the
  // current period so far, is drawn faded (bars) or dashed (lines) and says so on hover.
  // opts: stacked, zero (the y axis starts at 0: counts), colour (index into the palette),
  // legend (shown unless false).
  bucketed: function (id, type, axis, series, opts) {
    var el = document.getElementById(id);
    if (!el) { return null; }
    opts = opts || {};
    var self = this, partial = axis.partial;
    var datasets = series.map(function (s, i) {
      var colour = self.palette[(opts.colour === undefined ? i : opts.colour) % self.palette.length];
      var dataset = { label: s.label, data: s.values, borderColor: colour, pointRadius: 2, tension: 0.2 };
      if (type === "bar") {
        dataset.backgroundColor = s.values.map(function (_, j) { return j === partial ? self.faded(colour) : colour; });
        dataset.borderWidth = s.values.map(function (_, j) { return j === partial ? 1 : 0; });
      } else {
        dataset.backgroundColor = colour;
        dataset.spanGaps = true;
        dataset.segment = { borderDash: function (ctx) { return ctx.p1DataIndex === partial ? [5, 4] : undefined; } };
      }
      return dataset;
    });
    return new Chart(el, {
      type: type,
      data: { labels: axis.labels, datasets: datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false,
        scales: {
          x: { stacked: !!opts.stacked, ticks: { maxTicksLimit: 12, autoSkip: true } },
          y: { stacked: !!opts.stacked, beginAtZero: !!opts.zero, ticks: opts.zero ? { precision: 0 } : {} }
        },
        plugins: {
          legend: { display: opts.legend !== false, position: "bottom" },
          tooltip: { callbacks: { footer: function (items) {
            return items.length && items[0].dataIndex === partial ? "Partial: this " + axis.bucket + " so far" : "";
          } } }
        }
      }
    });
  }
};
