// AI Studio evaluation page: the metric charts, a running evaluation's progress over SSE, and the
// confusion matrix's link to the results grid. Wired by data- attributes, no eval; the collapsible
// sections are Alpine.js (x-data in the templates).
(function () {
  'use strict';

  var PALETTE = ['#4f46e5', '#0e9384', '#dc6803', '#c11574', '#175cd3', '#6938ef', '#099250', '#b54708', '#667085', '#e31b54'];
  var TICKS = { color: '#475467', font: { size: 11 } };
  var GRID = { color: '#f2f4f7' };

  function each(root, sel, fn) {
    if (root.matches && root.matches(sel)) fn(root);
    if (root.querySelectorAll) Array.prototype.forEach.call(root.querySelectorAll(sel), fn);
  }
  function parse(text, fallback) {
    try { return JSON.parse(text); } catch (_) { return fallback; }
  }
  // studio.js (loaded first)
  var fmtPct = window.studioFormat.pct;
  var fmtDuration = window.studioFormat.duration;
  var legend = { position: 'bottom', labels: { boxWidth: 10, boxHeight: 10, font: { size: 11 } } };
  var unitAxis = function (title) {
    return { type: 'linear', min: 0, max: 1, title: { display: true, text: title, color: '#98a2b3', font: { size: 11 } }, grid: GRID, ticks: Object.assign({ maxTicksLimit: 6 }, TICKS) };
  };
  var diagonal = { label: 'chance', data: [{ x: 0, y: 0 }, { x: 1, y: 1 }], borderColor: '#d0d5dd', borderDash: [4, 4], borderWidth: 1, pointRadius: 0, pointHoverRadius: 0 };

  // ---- charts -----------------------------------------------------------------------------------
  var charts = [];
  function destroyCharts() {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
  }

  function curveChart(canvas, curves, xTitle, yTitle, area, withDiagonal) {
    var many = curves.length > PALETTE.length;
    var sets = curves.map(function (c, i) {
      return {
        label: c.label + (c[area] === null || c[area] === undefined ? '' : ' (' + c[area].toFixed(3) + ')'),
        data: c.points,
        borderColor: PALETTE[i % PALETTE.length],
        backgroundColor: PALETTE[i % PALETTE.length],
        borderWidth: 1.8,
        pointRadius: 0,
        pointHoverRadius: 3,
        tension: 0,
      };
    });
    if (withDiagonal) sets.push(diagonal);
    return new Chart(canvas, {
      type: 'line',
      data: { datasets: sets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false, parsing: false, normalized: true,
        interaction: { mode: 'nearest', intersect: false },
        plugins: {
          legend: Object.assign({ display: !many }, legend, { labels: Object.assign({}, legend.labels, { filter: function (item) { return item.text !== 'chance'; } }) }),
          tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ': ' + ctx.parsed.x.toFixed(3) + ', ' + ctx.parsed.y.toFixed(3); } } },
        },
        scales: { x: unitAxis(xTitle), y: unitAxis(yTitle) },
      },
    });
  }

  function perClassChart(canvas, d) {
    var horizontal = d.labels.length > 8;
    var bar = function (label, data, color) { return { label: label, data: data, backgroundColor: color, borderRadius: 3, maxBarThickness: 22 }; };
    var valueAxis = { min: 0, max: 1, grid: GRID, ticks: Object.assign({ maxTicksLimit: 6 }, TICKS) };
    var labelAxis = { grid: { display: false }, ticks: TICKS };
    return new Chart(canvas, {
      type: 'bar',
      data: { labels: d.labels, datasets: [bar('precision', d.precision, '#4f46e5'), bar('recall', d.recall, '#0e9384'), bar('F1', d.f1, '#dc6803')] },
      options: {
        indexAxis: horizontal ? 'y' : 'x',
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: legend, tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ': ' + (horizontal ? ctx.parsed.x : ctx.parsed.y).toFixed(3); } } } },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
      },
    });
  }

  /**
   * The reliability diagram: per confidence bin, the accuracy reached (bars) beside the mean
   * confidence claimed (dots); a calibrated model's bars reach the dashed diagonal.
   */
  function reliabilityChart(canvas, bins) {
    var labels = bins.map(function (b) { return Math.round(b.lower * 100) + '–' + Math.round(b.upper * 100) + '%'; });
    return new Chart(canvas, {
      data: {
        labels: labels,
        datasets: [
          { type: 'bar', label: 'accuracy', data: bins.map(function (b) { return b.count > 0 ? b.accuracy : null; }), backgroundColor: 'rgba(79, 70, 229, 0.8)', borderRadius: 2, barPercentage: 0.92, categoryPercentage: 1, order: 2 },
          { type: 'line', label: 'mean confidence', data: bins.map(function (b) { return b.count > 0 ? b.confidence : null; }), borderColor: '#d92d20', backgroundColor: '#d92d20', showLine: false, pointRadius: 3.5, pointHoverRadius: 5, order: 1 },
          { type: 'line', label: 'perfect calibration', data: bins.map(function (b) { return (b.lower + b.upper) / 2; }), borderColor: '#98a2b3', borderDash: [4, 4], borderWidth: 1, pointRadius: 0, pointHoverRadius: 0, order: 0 },
        ],
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        interaction: { mode: 'index', intersect: false },
        plugins: {
          legend: legend,
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var b = bins[ctx.dataIndex];
                if (ctx.dataset.type === 'bar') return 'accuracy ' + fmtPct(ctx.parsed.y) + ' of ' + b.count + ' image' + (b.count === 1 ? '' : 's');
                return ctx.dataset.label + ': ' + fmtPct(ctx.parsed.y);
              },
            },
          },
        },
        scales: {
          x: { title: { display: true, text: 'confidence', color: '#98a2b3', font: { size: 11 } }, grid: { display: false }, ticks: Object.assign({ maxRotation: 0, autoSkip: true }, TICKS) },
          y: { min: 0, max: 1, grid: GRID, ticks: Object.assign({ maxTicksLimit: 6, callback: function (v) { return Math.round(v * 100) + '%'; } }, TICKS) },
        },
      },
    });
  }

  // ---- multi-label: one label's PR curve (picked in a select), AP and F1 per label ----------------
  function initMultilabel(box, d, canvas) {
    var select = box.querySelector('[data-eval-pr-class]');
    var pr = null;
    var draw = function () {
      if (pr) { charts.splice(charts.indexOf(pr), 1); pr.destroy(); pr = null; }
      var c = d.pr[select ? Number(select.value) || 0 : 0];
      if (!c) return;
      pr = curveChart(canvas('ml_pr'), [c], 'recall', 'precision', 'ap', false);
      charts.push(pr);
    };
    draw();
    if (select) select.addEventListener('change', function () { draw(); box.dataset.prLabel = select.options[select.selectedIndex].text; });
    var bar = function (label, data, color) { return { label: label, data: data, backgroundColor: color, borderRadius: 3, maxBarThickness: 22 }; };
    var horizontal = d.per_class.labels.length > 8;
    var valueAxis = { min: 0, max: 1, grid: GRID, ticks: Object.assign({ maxTicksLimit: 6 }, TICKS) };
    var labelAxis = { grid: { display: false }, ticks: TICKS };
    charts.push(new Chart(canvas('ml_per_class'), {
      type: 'bar',
      data: { labels: d.per_class.labels, datasets: [bar('AP', d.per_class.ap, '#4f46e5'), bar('F1 at 0.5', d.per_class.f1, '#dc6803')] },
      options: {
        indexAxis: horizontal ? 'y' : 'x', responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: legend },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis },
      },
    }));
  }

  // ---- regression: predicted-vs-true scatter with y = x, residual histogram (per target) ---------
  function initRegression(box, d, canvas) {
    var select = box.querySelector('[data-eval-target]');
    var mine = [];
    var axis = function (title) { return { type: 'linear', title: { display: true, text: title, color: '#98a2b3', font: { size: 11 } }, grid: GRID, ticks: Object.assign({ maxTicksLimit: 6 }, TICKS) }; };
    var draw = function () {
      mine.forEach(function (c) { charts.splice(charts.indexOf(c), 1); c.destroy(); });
      mine = [];
      var t = d.targets[select ? Number(select.value) || 0 : 0];
      if (!t) return;
      var xs = t.points.map(function (p) { return p.x; }).concat(t.points.map(function (p) { return p.y; }));
      var lo = Math.min.apply(null, xs.length ? xs : [0]);
      var hi = Math.max.apply(null, xs.length ? xs : [1]);
      mine.push(new Chart(canvas('scatter'), {
        type: 'scatter',
        data: {
          datasets: [
            { label: t.name, data: t.points, backgroundColor: 'rgba(79, 70, 229, 0.55)', pointRadius: 2.5, pointHoverRadius: 4 },
            { type: 'line', label: 'y = x', data: [{ x: lo, y: lo }, { x: hi, y: hi }], borderColor: '#98a2b3', borderDash: [4, 4], borderWidth: 1, pointRadius: 0, pointHoverRadius: 0 },
          ],
        },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          plugins: { legend: legend, tooltip: { callbacks: { label: function (ctx) { return 'true ' + ctx.parsed.x.toPrecision(4) + ', predicted ' + ctx.parsed.y.toPrecision(4); } } } },
          scales: { x: axis('true ' + t.name), y: axis('predicted ' + t.name) },
        },
      }));
      var h = t.histogram;
      var labels = h.counts.map(function (_, i) { return ((h.edges[i] + h.edges[i + 1]) / 2).toPrecision(3); });
      mine.push(new Chart(canvas('residuals'), {
        type: 'bar',
        data: { labels: labels, datasets: [{ label: 'images', data: h.counts, backgroundColor: 'rgba(14, 147, 132, 0.8)', borderRadius: 2, barPercentage: 0.95, categoryPercentage: 1 }] },
        options: {
          responsive: true, maintainAspectRatio: false, animation: false,
          plugins: {
            legend: { display: false },
            tooltip: { callbacks: { title: function (items) { var i = items[0].dataIndex; return h.edges[i].toPrecision(3) + ' to ' + h.edges[i + 1].toPrecision(3); } } },
          },
          scales: {
            x: { title: { display: true, text: 'predicted − true', color: '#98a2b3', font: { size: 11 } }, grid: { display: false }, ticks: Object.assign({ maxRotation: 0, autoSkip: true }, TICKS) },
            y: { beginAtZero: true, grid: GRID, ticks: Object.assign({ maxTicksLimit: 6, precision: 0 }, TICKS) },
          },
        },
      }));
      mine.forEach(function (c) { charts.push(c); });
      box.dataset.target = t.name;
    };
    draw();
    if (select) select.addEventListener('change', draw);
  }

  function initCharts(root) {
    each(root, '#eval-charts', function (box) {
      if (typeof Chart === 'undefined') return;
      destroyCharts();
      var d = parse(box.dataset.charts, null);
      if (!d) return;
      var canvas = function (name) { return box.querySelector('canvas[data-eval-chart="' + name + '"]'); };
      // The run's task picks the charts (views/tasks/<task>/evaluation-metrics.eta); classification's below.
      if (box.dataset.evalTask === 'multilabel' || box.dataset.evalTask === 'regression') {
        (box.dataset.evalTask === 'multilabel' ? initMultilabel : initRegression)(box, d, canvas);
        box.dataset.drawn = String(charts.length);
        return;
      }
      charts.push(perClassChart(canvas('per_class'), d.per_class));
      charts.push(reliabilityChart(canvas('reliability'), d.reliability));
      charts.push(curveChart(canvas('roc'), d.roc, 'false positive rate', 'true positive rate', 'auc', true));
      charts.push(curveChart(canvas('pr'), d.pr, 'recall', 'precision', 'ap', false));
      box.dataset.drawn = String(charts.length);
    });
  }

  // A running evaluation's box follows its job through htmx's SSE extension: the server renders
  // each progress event's fragment (views/fragments/evaluation-progress.eta) and, at `end`, the
  // board comes again (views/fragments/evaluation-config.eta). Nothing to do here.

  // ---- confusion matrix ↔ results grid ------------------------------------------------------------
  /** The cell of the pair the grid is filtered to is outlined; other filters clear it. */
  function markCell() {
    var form = document.getElementById('eval-filters');
    var table = document.getElementById('confusion-matrix');
    if (!form || !table) return;
    var label = form.elements.label ? form.elements.label.value : '';
    var predicted = form.elements.predicted ? form.elements.predicted.value : '';
    table.querySelectorAll('a[data-cm-cell]').forEach(function (a) {
      a.parentElement.classList.toggle('selected', a.dataset.label === label && a.dataset.predicted === predicted);
    });
  }

  var revealGrid = false;
  document.addEventListener('click', function (e) {
    var cell = e.target.closest && e.target.closest('a[data-cm-cell]');
    if (!cell) return;
    revealGrid = true;
    // Open the images section if it was folded away.
    var section = document.getElementById('eval-images');
    if (section && window.Alpine) window.Alpine.$data(section).open = true;
  });

  function init(root) {
    initCharts(root);
    each(root, '#eval-results', function () {
      markCell();
      if (revealGrid) {
        revealGrid = false;
        // The section's head scrolls to just below the sticky top bar (its scroll-margin-top).
        var section = document.getElementById('eval-images');
        if (section) section.scrollIntoView({ block: 'start', behavior: 'smooth' });
      }
    });
  }

  // A board swap replaces the charts (and the progress box, whose stream studio.js closes).
  document.addEventListener('htmx:beforeSwap', function (e) {
    var target = e.detail.target;
    if (target && target.id === 'evaluation') destroyCharts();
  });
  htmx.onLoad(init);
})();
