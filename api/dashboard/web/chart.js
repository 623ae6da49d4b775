// The candlestick chart (TradingView lightweight-charts, the standalone build make dashboard copies into vendor/),
// with the caller's fills as markers and the latest signals beside it.

const SECONDS = { "1s": 1, "1m": 60, "5m": 300, "1h": 3600 };
const BARS = 500; // how far back a load reaches, in bars

export class Candles {
  constructor(element, onSignals, call) {
    const charts = window.LightweightCharts;
    this.call = call;
    this.onSignals = onSignals;
    this.chart = charts.createChart(element, {
      height: 320,
      layout: { background: { color: "#ffffff" }, textColor: "#222" },
      timeScale: { timeVisible: true, secondsVisible: true },
    });
    this.series = this.chart.addSeries(charts.CandlestickSeries, {
      upColor: "#1a7f37", downColor: "#c62828", borderVisible: false,
      wickUpColor: "#1a7f37", wickDownColor: "#c62828",
    });
    this.markers = charts.createSeriesMarkers(this.series, []);
    this.fills = [];
    this.signals = new Map();
  }

  async load(instrument, timeframe, fills) {
    this.instrument = instrument;
    this.timeframe = timeframe;
    const from = new Date(Date.now() - BARS * SECONDS[timeframe] * 1000).toISOString();
    const page = await this.call("GET", "/v1/candles", { query: { instrument, timeframe, from, limit: 1000 } });
    this.series.setData(page.items.map(bar));
    this.fills = fills.filter((f) => f.instrument === instrument);
    this.drawFills();
    const signals = await this.call("GET", "/v1/signals", { query: { instrument } });
    this.signals = new Map(signals.items.map((s) => [s.indicator, s]));
    this.drawSignals();
  }

  candle(row) {
    if (row.instrument !== this.instrument || row.timeframe !== this.timeframe) return;
    try {
      this.series.update(bar(row));
    } catch {
      // an older bar than the newest shown (a late tick): the next load shows it
    }
  }

  fill(row) {
    if (row.instrument !== this.instrument) return;
    this.fills.push(row);
    if (this.drawing) return; // markers are laid out whole: once a frame, however many fills came
    this.drawing = true;
    requestAnimationFrame(() => {
      this.drawing = false;
      this.drawFills();
    });
  }

  signal(row) {
    if (row.instrument !== this.instrument) return;
    this.signals.set(row.indicator, row);
    this.drawSignals();
  }

  drawFills() {
    const step = SECONDS[this.timeframe];
    const markers = this.fills
      .map((f) => ({
        time: Math.floor(Date.parse(f.occurred_at) / 1000 / step) * step,
        position: f.side === "BUY" ? "belowBar" : "aboveBar",
        shape: f.side === "BUY" ? "arrowUp" : "arrowDown",
        color: f.side === "BUY" ? "#1a7f37" : "#c62828",
        text: `${f.side === "BUY" ? "B" : "S"} ${f.quantity}@${f.price}`,
      }))
      .sort((a, b) => a.time - b.time);
    this.markers.setMarkers(markers);
  }

  drawSignals() {
    const text = [...this.signals.values()]
      .map((s) => `${s.indicator}: ${s.direction} (strength ${Number(s.strength).toFixed(2)})`)
      .join("; ");
    this.onSignals(text ? `Latest signals — ${text}` : "No signals yet.");
  }

  remove() {
    this.chart.remove();
  }
}

function bar(row) {
  return {
    time: Date.parse(row.bucket_start) / 1000,
    open: Number(row.open),
    high: Number(row.high),
    low: Number(row.low),
    close: Number(row.close),
  };
}
