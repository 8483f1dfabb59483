/* Charts of the workflow statistics page (vendored Chart.js): each <canvas data-chart="NAME">
   draws chart NAME of the page's "wf-chart-data" ({NAME: {labels, series: [{name, values}]}});
   data-precision: the decimals of its value axis (0: counts). */
(function () {
  "use strict";

  const source = document.getElementById("wf-chart-data");
  if (!source || !window.Chart) return;
  const data = JSON.parse(source.textContent);
  const colours = ["#417690", "#e65100", "#2e7d32", "#6a1b9a"];
  const style = getComputedStyle(document.documentElement);
  const ink = style.getPropertyValue("--body-fg").trim() || "#333";
  const grid = style.getPropertyValue("--hairline-color").trim() || "#ddd";

  document.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    const chart = data[canvas.getAttribute("data-chart")];
    if (!chart) return;
    new window.Chart(canvas, {
      type: canvas.getAttribute("data-type") || "bar",
      data: {
        labels: chart.labels,
        datasets: chart.series.map((series, index) => ({
          label: series.name, data: series.values, backgroundColor: colours[index % colours.length]})),
      },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: {legend: {labels: {color: ink}}},
        scales: {
          x: {ticks: {color: ink, autoSkip: true, maxRotation: 60}, grid: {color: grid}},
          y: {beginAtZero: true, ticks: {color: ink, precision: Number(canvas.getAttribute("data-precision") || 0)}, grid: {color: grid}},
        },
      },
    });
    canvas.setAttribute("data-drawn", "true");
  });
})();
