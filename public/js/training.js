// AI Studio training pages: the experiment form (presets, dependent fields, field errors), the
// model upload, and the run panel's live charts over SSE. Wired by data- attributes, no eval.
(function () {
  'use strict';

  var TRAIN = '#4f46e5';
  var VAL = '#0e9384';
  var LR = '#dc6803';
  var PALETTE = ['#4f46e5', '#0e9384', '#dc6803', '#c11574', '#175cd3', '#6938ef', '#099250', '#b54708'];

  function each(root, sel, fn) {
    if (root.matches && root.matches(sel)) fn(root);
    if (root.querySelectorAll) Array.prototype.forEach.call(root.querySelectorAll(sel), fn);
  }
  function parse(text, fallback) {
    try { return JSON.parse(text); } catch (_) { return fallback; }
  }

  // ---- the experiment form ----------------------------------------------------------------------
  function field(form, name) { return form.querySelector('[name="' + name + '"]'); }

  function setField(form, name, value) {
    var el = field(form, name);
    if (!el) return;
    if (el.type === 'checkbox') el.checked = Boolean(value);
    else el.value = String(value);
  }

  /** A preset is nested like the API body; the form names are its dotted paths. */
  function applyPreset(form, preset) {
    var walk = function (prefix, v) {
      if (v === null && prefix === 'hyperparameters.early_stopping') { setField(form, prefix + '.enabled', false); return; }
      if (Array.isArray(v)) { v.forEach(function (x, i) { setField(form, prefix + '.' + i, x); }); return; }
      if (v && typeof v === 'object') {
        if (prefix === 'hyperparameters.early_stopping') setField(form, prefix + '.enabled', true);
        Object.keys(v).forEach(function (k) { walk(prefix + '.' + k, v[k]); });
        return;
      }
      setField(form, prefix, v);
    };
    walk('hyperparameters', preset.hyperparameters);
    walk('augmentation', preset.augmentation);
    // Fields a preset leaves out go back to their defaults (a second preset must not inherit the first's).
    if (!preset.augmentation.rotation.degrees) setField(form, 'augmentation.rotation.degrees', 15);
    syncForm(form);
    var aug = document.getElementById('aug-fields');
    if (aug) aug.dispatchEvent(new Event('change', { bubbles: true }));
  }

  function syncForm(form) {
    var model = field(form, 'model.choice');
    var opt = model && model.selectedOptions[0];
    var size = field(form, 'model.input_size');
    if (opt && size) {
      var fixed = opt.dataset.fixedSize === '1';
      size.readOnly = fixed;
      if (fixed || size.dataset.touched !== '1') size.value = opt.dataset.inputSize;
      var note = form.querySelector('[data-model-note]');
      // With pretrained weights chosen the model line says so: the fine-tuning recipe applies to it.
      var weights = field(form, 'model.weights_id');
      var pretrained = !fixed && weights && !weights.closest('[hidden]') && weights.value !== '';
      if (note) {
        note.textContent = fixed
          ? 'An imported backbone keeps its own input size and normalisation; it starts from its weights.'
          : pretrained ? 'Pretrained: starts from the weights chosen, and fine-tunes with the recipe below.' : 'Catalog models start from random weights.';
        note.classList.toggle('pretrained-note', Boolean(pretrained));
      }
      // Under the Weights select: where the chosen weights came from, else the way to load some.
      var hint = form.querySelector('[data-weights-hint]');
      var detail = form.querySelector('[data-weights-detail]');
      if (weights && hint && detail) {
        var chosen = weights.selectedOptions[0];
        detail.textContent = chosen && chosen.value ? chosen.dataset.detail || '' : '';
        detail.hidden = !detail.textContent;
        hint.hidden = !detail.hidden;
      }
    }
    var trainable = field(form, 'model.trainable');
    var last = form.querySelector('[data-last-blocks]');
    if (trainable && last) last.hidden = trainable.value !== 'last';
    var sgd = field(form, 'hyperparameters.optimizer');
    form.querySelectorAll('[data-sgd-only]').forEach(function (el) { el.hidden = !sgd || sgd.value !== 'sgd'; });
    // A field of one loss only (the Huber delta): shown while that loss is chosen.
    var loss = field(form, 'hyperparameters.loss');
    form.querySelectorAll('[data-loss-only]').forEach(function (el) { el.hidden = !loss || loss.value !== el.dataset.lossOnly; });
    var sched = field(form, 'hyperparameters.scheduler');
    form.querySelectorAll('[data-step-only]').forEach(function (el) { el.hidden = !sched || sched.value !== 'step'; });
    form.querySelectorAll('[data-toggle]').forEach(function (box) {
      var group = form.querySelector('[data-toggled="' + box.dataset.toggle + '"]');
      if (group) {
        group.classList.toggle('off', !box.checked);
        // the sub-fields of an option that is off are off too (and not tabbed through)
        group.querySelectorAll('input, select').forEach(function (el) { el.disabled = !box.checked; });
      }
    });
    var norm = field(form, 'augmentation.normalize.mode');
    var custom = form.querySelector('[data-custom-norm]');
    if (norm && custom) custom.hidden = norm.value !== 'custom';
  }

  function initExperimentForm(root) {
    each(root, '#experiment-form', function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = '1';
      var presets = parse(form.dataset.presets, {});
      var lrDefaults = parse(form.dataset.lrDefaults, {});
      var wdDefaults = parse(form.dataset.wdDefaults, {});
      var optimizer = field(form, 'hyperparameters.optimizer');
      var previous = optimizer ? optimizer.value : null;
      form.addEventListener('change', function (e) {
        var t = e.target;
        if (t.name === 'model.input_size') t.dataset.touched = '1';
        // Switching optimizer moves lr and weight decay along, unless the person changed them.
        if (t === optimizer && previous) {
          var lr = field(form, 'hyperparameters.lr');
          var wd = field(form, 'hyperparameters.weight_decay');
          if (lr && Number(lr.value) === lrDefaults[previous]) lr.value = lrDefaults[t.value];
          if (wd && Number(wd.value) === wdDefaults[previous]) wd.value = wdDefaults[t.value];
          previous = t.value;
        }
        if (t.getAttribute('aria-invalid')) clearFieldError(t);
        // The preview shows a training image at the input size: both come from these fields.
        if (t.name === 'split_name' || t.name === 'model.input_size' || t.name === 'model.choice') htmx.trigger('#aug-preview', 'refresh-preview');
        syncForm(form);
      });
      form.addEventListener('click', function (e) {
        var b = e.target.closest('[data-preset]');
        if (b && presets[b.dataset.preset]) {
          applyPreset(form, presets[b.dataset.preset]);
          form.querySelectorAll('[data-preset]').forEach(function (x) {
            x.classList.toggle('btn-primary', x === b);
            x.setAttribute('aria-pressed', String(x === b));
          });
        }
        if (e.target.closest('[data-another-image]')) {
          var seed = field(form, 'preview_seed');
          seed.value = String(Number(seed.value || 0) + 1);
          htmx.trigger('#aug-preview', 'refresh-preview');
        }
        var f = e.target.closest('[data-focus-field]');
        if (f) {
          e.preventDefault();
          var el = field(form, f.dataset.focusField);
          if (el) { el.focus(); el.scrollIntoView({ block: 'center', behavior: 'smooth' }); }
        }
      });
      // A new dataset brings its own split select (and images to preview).
      form.addEventListener('htmx:afterSwap', function (e) {
        if (e.detail.target && e.detail.target.id === 'split-check') htmx.trigger('#aug-preview', 'refresh-preview');
        // Another architecture brings its own Weights choices: the model line follows.
        if (e.detail.target && e.detail.target.id === 'model-weights') syncForm(form);
      });
      syncForm(form);
    });
  }

  function clearFieldError(el) {
    el.removeAttribute('aria-invalid');
    var label = el.closest('.field');
    var msg = label && label.querySelector('.field-error');
    if (msg) msg.remove();
  }

  /** A refused form: each error goes beside its field too, as well as into the list. */
  function initFieldErrors(root) {
    each(root, '[data-field-errors]', function (box) {
      var form = document.getElementById('experiment-form');
      if (!form) return;
      form.querySelectorAll('[aria-invalid]').forEach(clearFieldError);
      var errors = parse(box.dataset.fieldErrors, []);
      errors.forEach(function (err) {
        var el = err.field && field(form, err.field);
        if (!el) return;
        el.setAttribute('aria-invalid', 'true');
        var label = el.closest('.field');
        if (label && !label.querySelector('.field-error')) {
          var small = document.createElement('small');
          small.className = 'field-error';
          small.textContent = err.message;
          label.append(small);
        }
      });
    });
  }

  // ---- model upload -----------------------------------------------------------------------------
  function initModelUpload(root) {
    each(root, '[data-model-upload]', function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = '1';
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        window.studioUpload(form, form.dataset.modelUpload, function (status, body) {
          if (status >= 200 && status < 300 && body && body.status === 'ok') {
            form.reset();
            form.querySelector('[data-file-name]').textContent = '';
            document.body.dispatchEvent(new CustomEvent('models-changed'));
          } else {
            var err = body && body.error;
            showToast('Import refused', err ? err.message : status ? 'HTTP ' + status : 'the connection was lost', err && err.code);
          }
        });
      });
    });
  }

  // ---- pretrained weights upload (models page): the job shows in the weights list --------------
  function initWeightsUpload(root) {
    each(root, '[data-weights-upload]', function (form) {
      if (form.dataset.ready) return;
      form.dataset.ready = '1';
      var error = form.querySelector('[data-form-error]');
      var say = function (text) {
        error.textContent = text;
        error.hidden = !text;
      };
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        say('');
        var input = form.querySelector('input[type=file]');
        if (!input.files || !input.files.length) { say('Choose a .pth, .safetensors or .ckpt file first.'); return; }
        window.studioUpload(form, form.dataset.weightsUpload, function (status, body) {
          if (status >= 200 && status < 300 && body && body.status === 'ok') {
            form.reset();
            form.querySelector('[data-file-name]').textContent = '';
            // The list shows the new record with its live job; the catalog counts it.
            document.body.dispatchEvent(new CustomEvent('weights-changed'));
            document.body.dispatchEvent(new CustomEvent('models-changed'));
          } else {
            say(uploadRefusal(status, body));
          }
        });
      });
    });
  }

  /** A refused upload in words: the API's message as a sentence, never its code. */
  function uploadRefusal(status, body) {
    var m = body && body.error && body.error.message;
    if (status === 413) return 'The file is larger than this studio accepts.';
    if (!m) return status ? 'The studio refused the file.' : 'The connection was lost before the file arrived.';
    m = m.replace(/^[a-z_.]+: (?=\S)/, '');
    m = m.charAt(0).toUpperCase() + m.slice(1);
    return /[.!?)]$/.test(m) ? m : m + '.';
  }

  /** studio.js's toast (loaded first by the layout). */
  function showToast(title, message, code) {
    if (window.studioToast) window.studioToast(title, message, code);
  }

  // ---- charts -----------------------------------------------------------------------------------
  function lineOptions(opts) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      parsing: false,
      normalized: true,
      interaction: { mode: 'index', intersect: false },
      plugins: {
        legend: { display: opts.legend !== false, position: 'bottom', labels: { boxWidth: 10, boxHeight: 10, font: { size: 11 } } },
        tooltip: { callbacks: opts.tooltip ? { label: opts.tooltip } : {} },
      },
      scales: {
        x: { type: 'linear', min: 1, suggestedMax: opts.maxEpoch || 2, title: { display: true, text: 'epoch', color: '#98a2b3', font: { size: 11 } }, grid: { display: false }, ticks: { color: '#475467', font: { size: 11 }, precision: 0 } },
        y: Object.assign({ grid: { color: '#f2f4f7' }, ticks: { color: '#475467', font: { size: 11 }, maxTicksLimit: 6 } }, opts.y || {}),
      },
    };
  }
  function dataset(label, color, points, dashed) {
    return { label: label, data: points, borderColor: color, backgroundColor: color, borderWidth: 2, pointRadius: 2.5, pointHoverRadius: 4, tension: 0.25, spanGaps: true, borderDash: dashed ? [5, 4] : undefined };
  }
  function points(series, key) {
    return series.map(function (m) { return { x: m.epoch, y: m[key] === null || m[key] === undefined ? null : m[key] }; });
  }

  // ---- the run panel: curves, progress, log; live over SSE -----------------------------------------
  var current = null; // { panel, es, charts, series }

  // studio.js (loaded first)
  var fmtPct = window.studioFormat.pct;
  var fmtDuration = window.studioFormat.duration;
  function fmtLoss(v) { return v === null || v === undefined ? '—' : v.toFixed(4); }

  function stop() {
    if (!current) return;
    Object.keys(current.charts).forEach(function (k) { current.charts[k].destroy(); });
    current = null;
  }

  function drawRun(state) {
    var s = state.series;
    var maxEpoch = state.epochs;
    var c = state.charts;
    c.loss.data.datasets[0].data = points(s, 'train_loss');
    c.loss.data.datasets[1].data = points(s, 'val_loss');
    c.metric.data.datasets[0].data = points(s, 'train_metric');
    c.metric.data.datasets[1].data = points(s, 'val_metric');
    c.lr.data.datasets[0].data = points(s, 'lr');
    Object.keys(c).forEach(function (k) {
      c[k].options.scales.x.suggestedMax = Math.max(2, maxEpoch);
      c[k].update('none');
    });
    state.panel.dataset.points = String(s.length);
  }

  function initRun(root) {
    each(root, '#run-panel', function (panel) {
      if (current && current.panel === panel) return;
      stop();
      if (typeof Chart === 'undefined') return;
      var canvas = function (name) { return panel.querySelector('canvas[data-chart="' + name + '"]'); };
      var epochs = Number(panel.querySelector('[data-run-epochs]').textContent) || 2;
      var pctTick = { min: 0, max: 1, ticks: { color: '#475467', font: { size: 11 }, callback: function (v) { return Math.round(v * 100) + '%'; } } };
      // The task's headline metric (accuracy, mAP, MAE, …): a fraction drawn in percent, or a plain number.
      var percent = panel.dataset.metricFormat !== 'number';
      var fmtMetric = percent ? fmtPct : fmtLoss;
      var state = {
        panel: panel,
        epochs: epochs,
        series: parse(panel.dataset.series, []),
        charts: {
          loss: new Chart(canvas('loss'), { type: 'line', data: { datasets: [dataset('train', TRAIN, []), dataset('val', VAL, [])] }, options: lineOptions({ maxEpoch: epochs, y: { beginAtZero: true } }) }),
          metric: new Chart(canvas('metric'), {
            type: 'line',
            data: { datasets: [dataset('train', TRAIN, []), dataset('val', VAL, [])] },
            options: lineOptions({ maxEpoch: epochs, y: percent ? pctTick : { beginAtZero: false }, tooltip: function (ctx) { return ctx.dataset.label + ': ' + fmtMetric(ctx.parsed.y); } }),
          }),
          lr: new Chart(canvas('lr'), { type: 'line', data: { datasets: [dataset('learning rate', LR, [])] }, options: lineOptions({ maxEpoch: epochs, legend: false, y: { beginAtZero: true } }) }),
        },
      };
      current = state;
      drawRun(state);
      if (panel.hasAttribute('sse-connect')) follow(state);
    });
  }

  /** A metric's value in a metrics line: the task's `metrics` map, else the line's own field (older lines). */
  function metricOf(m, key) {
    var v = m.metrics && m.metrics[key] !== undefined ? m.metrics[key] : m[key];
    return typeof v === 'number' && isFinite(v) ? v : null;
  }

  /** The best epoch so far by the run's metric (run.json has it once the epoch's checkpoint is written). */
  function showBest(state) {
    var d = state.panel.dataset;
    var key = d.bestMetric || 'val_accuracy';
    var headline = 'val_' + (d.metric || 'accuracy');
    // The series carries the loss and the headline metric; `best` may follow either.
    var field = key === 'val_loss' ? 'val_loss' : key === headline ? 'val_metric' : null;
    if (!field) return;
    var lower = key === 'val_loss' || d.metricHigher === 'false';
    var best = null;
    state.series.forEach(function (m) {
      var v = m[field];
      if (v === null || v === undefined) return;
      if (!best || (lower ? v < best.v : v > best.v)) best = { epoch: m.epoch, v: v };
    });
    if (!best) return;
    var fmt = key === 'val_loss' || d.metricFormat === 'number' ? fmtLoss : fmtPct;
    state.panel.querySelector('[data-run-best]').textContent = String(best.epoch);
    state.panel.querySelector('[data-run-best-note]').textContent = key.replace('val_', 'val ').replace(/_/g, ' ') + ' ' + fmt(best.v);
  }

  /** "running for …" ticks once a second while the run trains. */
  var ticker = null;
  function tick() {
    var el = current && current.panel.hasAttribute('sse-connect') ? current.panel.querySelector('[data-run-elapsed]') : null;
    if (!el || !el.dataset.since) return;
    el.textContent = 'running for ' + fmtDuration((Date.now() - Date.parse(el.dataset.since)) / 1000);
  }

  /**
   * A live run: htmx's SSE extension swaps the fragments the server renders per job event
   * (views/fragments/training-progress.eta, training-stats.eta, log lines) and fetches the board
   * at `end`. Here only what is drawn, not rendered: each epoch's point for the charts (a
   * [data-metric-point] in the swapped stats), the log's tail and scroll, the elapsed time.
   */
  function follow(state) {
    if (!ticker) ticker = setInterval(tick, 1000);
    var log = state.panel.querySelector('[data-run-log]');
    if (log) log.scrollTop = log.scrollHeight;
  }

  /** An epoch's point arrived with the stats: add it to the series (once per epoch) and redraw. */
  function takePoints(root) {
    if (!current || !root.querySelectorAll) return;
    var found = Array.prototype.slice.call(root.querySelectorAll('[data-metric-point]'));
    found.forEach(function (t) {
      var m = parse(t.dataset.metricPoint, null);
      t.remove();
      if (!m || typeof m.epoch !== 'number' || !current.panel.contains(root)) return;
      var s = current.series.filter(function (x) { return x.epoch !== m.epoch; });
      s.push(m);
      s.sort(function (a, b) { return a.epoch - b.epoch; });
      current.series = s;
      var epochs = Number((current.panel.querySelector('[data-run-epochs]') || {}).textContent) || current.epochs;
      current.epochs = epochs;
      drawRun(current);
      showBest(current);
    });
  }

  // The log: stay at the bottom when it was there before the line came; keep its tail bounded, as the server does.
  var stick = false;
  document.addEventListener('htmx:sseBeforeMessage', function (e) {
    var log = e.target;
    if (log && log.matches && log.matches('[data-run-log]')) stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  });
  document.addEventListener('htmx:sseMessage', function (e) {
    // the stats of a new epoch carry its point for the charts
    if (e.target && e.target.matches && e.target.matches('.run-stats')) takePoints(e.target);
    var log = e.target;
    if (!log || !log.matches || !log.matches('[data-run-log]')) return;
    while (log.childNodes.length > 400) log.removeChild(log.firstChild);
    if (stick) log.scrollTop = log.scrollHeight;
  });

  // ---- compare runs of an experiment ------------------------------------------------------------
  var compare = null;
  function initCompare(root) {
    each(root, '#compare', function (card) {
      if (typeof Chart === 'undefined') return;
      if (compare) compare.destroy();
      var runs = parse(card.dataset.compare, []);
      var select = card.querySelector('[data-compare-metric]');
      var maxEpoch = runs.reduce(function (m, r) { return Math.max(m, r.series.length ? r.series[r.series.length - 1].epoch : 0); }, 2);
      var draw = function () {
        var key = select.value;
        var isAcc = select.selectedOptions[0] && select.selectedOptions[0].dataset.format === 'percent';
        if (compare) compare.destroy();
        compare = new Chart(card.querySelector('canvas'), {
          type: 'line',
          data: { datasets: runs.map(function (r, i) { return dataset(r.label, PALETTE[i % PALETTE.length], points(r.series, key)); }) },
          options: lineOptions({
            maxEpoch: maxEpoch,
            y: isAcc ? { min: 0, max: 1, ticks: { color: '#475467', font: { size: 11 }, callback: function (v) { return Math.round(v * 100) + '%'; } } } : { beginAtZero: true },
            tooltip: function (ctx) { return ctx.dataset.label + ': ' + (isAcc ? fmtPct(ctx.parsed.y) : fmtLoss(ctx.parsed.y)); },
          }),
        });
      };
      select.addEventListener('change', draw);
      draw();
    });
  }

  function init(root) {
    initExperimentForm(root);
    initFieldErrors(root);
    initModelUpload(root);
    initWeightsUpload(root);
    initRun(root);
    initCompare(root);
  }

  // A board swap replaces the run panel: its stream and charts go with it.
  document.addEventListener('htmx:beforeSwap', function (e) {
    var target = e.detail.target;
    if (current && target && (target === current.panel || target.contains(current.panel))) stop();
  });
  htmx.onLoad(init);
})();
