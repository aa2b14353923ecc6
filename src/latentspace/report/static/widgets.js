(function () {
  "use strict";
  var GRAY = __GRAY__;

  function arr(d) {
    var s = atob(d.b64), n = s.length, bytes = new Uint8Array(n), i;
    for (i = 0; i < n; i++) bytes[i] = s.charCodeAt(i);
    if (d.dtype === "uint8") return bytes;
    var view = new DataView(bytes.buffer), out = new Float64Array(n / 4);
    for (i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);  // little-endian
    return out;
  }

  function el(tag, attrs, parent) {
    var e = document.createElement(tag), k;
    for (k in attrs || {}) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    }
    if (parent) parent.appendChild(e);
    return e;
  }

  // values in [0, 1] -> grey, as matplotlib's "gray" map with vmin=0, vmax=1
  function level(v) {
    if (!(v > 0)) return GRAY[0];
    if (v >= 1) return GRAY[255];
    return GRAY[Math.min(255, Math.floor(v * 256))];
  }

  function imageCanvas(shape, parent, cls) {
    var c = el("canvas", {"class": "ls-image " + (cls || ""), width: shape[1], height: shape[0]},
               parent);
    var zoom = Math.max(1, Math.floor(140 / Math.max(shape[0], shape[1])));
    c.style.width = (zoom * shape[1]) + "px";
    c.style.height = (zoom * shape[0]) + "px";
    return c;
  }

  function paint(canvas, values) {
    var ctx = canvas.getContext("2d"), img = ctx.createImageData(canvas.width, canvas.height);
    for (var i = 0; i < values.length; i++) {
      var g = level(values[i]);
      img.data[4 * i] = g; img.data[4 * i + 1] = g; img.data[4 * i + 2] = g;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  // the decoder's forward pass, in float64 from the float32 weights
  function Decoder(spec) {
    this.layers = spec.layers.map(function (l) {
      if (l.op !== "linear") return l;
      return {op: "linear", W: arr(l.weight), b: arr(l.bias), n_out: l.weight.shape[0],
              n_in: l.weight.shape[1]};
    });
    this.rescale = spec.rescale; this.scale = spec.scale; this.shift = arr(spec.shift);
    this.sigmoid = spec.sigmoid;
  }
  Decoder.prototype.mean = function (z) {
    var h = Float64Array.from(z), i, j;
    this.layers.forEach(function (l) {
      if (l.op === "linear") {
        var out = new Float64Array(l.n_out);
        for (i = 0; i < l.n_out; i++) {
          var s = l.b[i], row = i * l.n_in;
          for (j = 0; j < l.n_in; j++) s += l.W[row + j] * h[j];
          out[i] = s;
        }
        h = out;
        return;
      }
      for (i = 0; i < h.length; i++) {
        var x = h[i];
        switch (l.op) {
          case "relu": h[i] = x > 0 ? x : 0; break;
          case "leaky_relu": h[i] = x > 0 ? x : l.slope * x; break;
          case "tanh": h[i] = Math.tanh(x); break;
          case "sigmoid": h[i] = 1 / (1 + Math.exp(-x)); break;
          case "elu": h[i] = x > 0 ? x : l.alpha * (Math.exp(x) - 1); break;
          case "softplus":
            h[i] = l.beta * x > l.threshold ? x : Math.log1p(Math.exp(l.beta * x)) / l.beta;
            break;
          case "identity": break;
          default: throw new Error("unknown layer " + l.op);
        }
      }
    });
    for (i = 0; i < h.length; i++) {
      if (this.rescale) h[i] = h[i] * this.scale + this.shift[i];
      if (this.sigmoid) h[i] = 1 / (1 + Math.exp(-h[i]));
    }
    return h;
  };

  var decoders = {};
  function decoderOf(ref) {
    var name = ref.slice(1);
    if (!decoders[name]) {
      var node = document.getElementById("ls-blob-" + name);
      decoders[name] = new Decoder(JSON.parse(node.textContent));
    }
    return decoders[name];
  }

  function fmt(v) { return (v >= 0 ? "+" : "") + v.toFixed(2); }

  var builders = {};

  builders["ppca-sliders"] = function (root, spec) {
    var V = arr(spec.components), a = arr(spec.scale), mu = arr(spec.mean);
    var k = spec.components.shape[0], d = spec.components.shape[1];
    var box = el("div", {"class": "ls-row"}, root);
    var controls = el("div", {"class": "ls-controls"}, box);
    var canvas = imageCanvas(spec.shape, box);
    var inputs = [], outputs = [];
    function draw() {
      var z = inputs.map(function (inp) { return parseFloat(inp.value); });
      var x = Float64Array.from(mu);
      for (var j = 0; j < k; j++) {
        var c = z[j] * a[j], row = j * d;
        if (c === 0) continue;
        for (var p = 0; p < d; p++) x[p] += c * V[row + p];
      }
      z.forEach(function (v, j) { outputs[j].textContent = fmt(v); });
      paint(canvas, x);
      root.lsState = {z: z, values: Array.from(x)};
    }
    for (var j = 0; j < k; j++) {
      var label = el("label", {"class": "ls-slider"}, controls);
      el("span", {text: "z" + (j + 1)}, label);
      var inp = el("input", {type: "range", min: -spec.span, max: spec.span, step: spec.step,
                             value: 0, "aria-label": "latent coordinate z" + (j + 1)}, label);
      inp.addEventListener("input", draw);
      inputs.push(inp);
      outputs.push(el("output", {text: fmt(0)}, label));
    }
    var reset = el("button", {type: "button", text: "reset to z = 0"}, controls);
    reset.addEventListener("click", function () {
      inputs.forEach(function (inp) { inp.value = 0; });
      draw();
    });
    draw();
  };

  builders["latent-plane"] = function (root, spec) {
    var dec = decoderOf(spec.decoder), P = arr(spec.points), ext = spec.extent;
    var box = el("div", {"class": "ls-row"}, root);
    var plane = el("canvas", {"class": "ls-plane", width: 360, height: 360,
                              "aria-label": "latent plane: move the pointer to decode"}, box);
    var side = el("div", {"class": "ls-side"}, box);
    var canvas = imageCanvas(spec.shape, side);
    var readout = el("p", {"class": "ls-readout", text: "z = (0, 0)"}, side);
    var W = plane.width, H = plane.height;
    function px(z1) { return (z1 - ext[0]) / (ext[1] - ext[0]) * W; }
    function py(z2) { return (ext[3] - z2) / (ext[3] - ext[2]) * H; }
    var dots = document.createElement("canvas");
    dots.width = W; dots.height = H;
    var g = dots.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, W, H);
    g.strokeStyle = "#dde2ea";
    g.beginPath(); g.moveTo(px(0), 0); g.lineTo(px(0), H); g.moveTo(0, py(0)); g.lineTo(W, py(0));
    g.stroke();
    // integer ticks on the two axes through 0
    g.fillStyle = "#5b6472"; g.font = "10px sans-serif"; g.textAlign = "center";
    for (var t = Math.ceil(ext[0]); t <= ext[1]; t++) {
      if (t !== 0) { g.fillRect(px(t) - 0.5, py(0) - 3, 1, 6); g.fillText(t, px(t), py(0) + 13); }
    }
    g.textAlign = "left";
    for (t = Math.ceil(ext[2]); t <= ext[3]; t++) {
      if (t !== 0) { g.fillRect(px(0) - 3, py(t) - 0.5, 6, 1); g.fillText(t, px(0) + 5, py(t) + 3); }
    }
    g.fillText("z1", W - 16, py(0) - 5);
    g.fillText("z2", px(0) - 18, 11);
    for (var i = 0; i < P.length / 2; i++) {
      g.fillStyle = spec.labels ? spec.colors[spec.labels[i]] : "#2a62b8";
      g.globalAlpha = 0.6;
      g.fillRect(px(P[2 * i]) - 1.5, py(P[2 * i + 1]) - 1.5, 3, 3);
    }
    g.globalAlpha = 1;
    if (spec.names.length) {
      var legend = el("p", {"class": "ls-legend"}, side);
      spec.names.forEach(function (name, c) {
        var item = el("span", {}, legend);
        el("i", {style: "background:" + spec.colors[c]}, item);
        item.appendChild(document.createTextNode(name));
      });
    }
    var ctx = plane.getContext("2d");
    function show(z) {
      var x = dec.mean(z);
      paint(canvas, x);
      ctx.drawImage(dots, 0, 0);
      ctx.strokeStyle = "#000"; ctx.lineWidth = 1.5;
      ctx.beginPath(); ctx.arc(px(z[0]), py(z[1]), 6, 0, 2 * Math.PI); ctx.stroke();
      readout.textContent = "z = (" + z[0].toFixed(2) + ", " + z[1].toFixed(2) + ")";
      root.lsState = {z: z, values: Array.from(x)};
    }
    function at(ev) {
      var r = plane.getBoundingClientRect();
      var fx = (ev.clientX - r.left) / r.width, fy = (ev.clientY - r.top) / r.height;
      show([ext[0] + fx * (ext[1] - ext[0]), ext[3] - fy * (ext[3] - ext[2])]);
    }
    plane.addEventListener("pointermove", at);
    plane.addEventListener("pointerdown", at);
    show([0, 0]);
  };

  builders["interpolation"] = function (root, spec) {
    var dec = decoderOf(spec.decoder), Z = arr(spec.codes), X = arr(spec.images);
    var L = spec.codes.shape[1], d = spec.images.shape[1], n = spec.codes.shape[0];
    var bar = el("div", {"class": "ls-controls ls-pair"}, root);
    function picker(text, value) {
      var label = el("label", {text: text + " "}, bar);
      var s = el("select", {}, label);
      for (var i = 0; i < n; i++) el("option", {value: i, text: "held-out #" + (i + 1)}, s);
      s.value = value;
      return s;
    }
    var sa = picker("from", 0), sb = picker("to", 1);
    var again = el("button", {type: "button", text: "another pair"}, bar);
    var strip = el("div", {"class": "ls-strip"}, root);
    var ends = [imageCanvas(spec.shape, null, "ls-end")], frames = [];
    strip.appendChild(ends[0]);
    for (var f = 0; f < spec.n_frames; f++) frames.push(imageCanvas(spec.shape, strip, "ls-frame"));
    ends.push(imageCanvas(spec.shape, strip, "ls-end"));
    function draw() {
      var a = parseInt(sa.value, 10), b = parseInt(sb.value, 10), values = [], zs = [];
      paint(ends[0], X.subarray(a * d, (a + 1) * d));
      paint(ends[1], X.subarray(b * d, (b + 1) * d));
      for (var f = 0; f < spec.n_frames; f++) {
        var t = f / (spec.n_frames - 1), z = new Float64Array(L);
        for (var j = 0; j < L; j++) z[j] = (1 - t) * Z[a * L + j] + t * Z[b * L + j];
        var x = dec.mean(z);
        paint(frames[f], x);
        values.push(Array.from(x)); zs.push(Array.from(z));
      }
      root.lsState = {pair: [a, b], z: zs, values: values};
    }
    sa.addEventListener("change", draw);
    sb.addEventListener("change", draw);
    again.addEventListener("click", function () {
      var a = Math.floor(Math.random() * n), b = Math.floor(Math.random() * (n - 1));
      sa.value = a; sb.value = b >= a ? b + 1 : b;
      draw();
    });
    draw();
  };

  Array.prototype.forEach.call(document.querySelectorAll("div.widget"), function (root) {
    var body = root.querySelector(".widget-body");
    try {
      var spec = JSON.parse(root.querySelector("script.widget-spec").textContent);
      builders[root.getAttribute("data-kind")](body, spec);
    } catch (err) {
      body.textContent = "This interactive figure could not be built: " + err.message;
      throw err;
    }
  });
})();
