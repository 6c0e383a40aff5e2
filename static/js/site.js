// Every page: the theme (system, light, dark or red light), the collapsible navigation on phones,
// forms that ask before they act, and drawing the figures the server prepared in that theme and
// at that width. Loaded in <head> so that a chosen theme applies before the first paint.
(function () {
  "use strict";
  var root = document.documentElement;
  var STORAGE = "gsafollowup-theme";
  var darkScheme = window.matchMedia("(prefers-color-scheme: dark)");
  var narrowScreen = window.matchMedia("(max-width: 700px)");
  var plots = [];

  function chosenTheme() {
    try {
      return window.localStorage.getItem(STORAGE) || "auto";
    } catch (error) {
      return "auto"; // storage refused (private mode): follow the system
    }
  }

  function effectiveTheme() {
    var theme = chosenTheme();
    if (theme === "auto") {
      return darkScheme.matches ? "dark" : "light";
    }
    return theme;
  }

  function setThemeAttribute() {
    var theme = chosenTheme();
    if (theme === "auto") {
      root.removeAttribute("data-theme");
    } else {
      root.setAttribute("data-theme", theme);
    }
  }

  function plotThemes() {
    var source = document.getElementById("plot-themes");
    return source ? JSON.parse(source.textContent) : {};
  }

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  // A copy of base with patch laid over it, key by key (arrays and values replaced whole).
  function merged(base, patch) {
    var out = {};
    Object.keys(base || {}).forEach(function (key) {
      out[key] = base[key];
    });
    Object.keys(patch || {}).forEach(function (key) {
      out[key] = isObject(out[key]) && isObject(patch[key]) ? merged(out[key], patch[key]) : patch[key];
    });
    return out;
  }

  // The theme's colours on every axis the layout has, its paper and its text.
  function themed(layout) {
    var colours = plotThemes()[effectiveTheme()];
    if (!colours) {
      return layout;
    }
    var patch = {
      paper_bgcolor: colours.paper,
      plot_bgcolor: colours.plot,
      font: { color: colours.font },
      legend: { bgcolor: colours.paper, font: { color: colours.font } },
      title: { font: { color: colours.font } },
    };
    Object.keys(layout).forEach(function (key) {
      if (/^[xy]axis\d*$/.test(key)) {
        patch[key] = { gridcolor: colours.grid, linecolor: colours.line, zerolinecolor: colours.line };
      }
    });
    return merged(layout, patch);
  }

  function layoutFor(figure) {
    var layout = figure.layout;
    if (narrowScreen.matches && figure.narrow_layout) {
      layout = merged(layout, figure.narrow_layout);
    }
    return themed(layout);
  }

  // Draw a figure prepared by the server; it follows the theme and the width from then on.
  function plot(holder, figure) {
    var config = { responsive: true, displaylogo: false };
    return window.Plotly.newPlot(holder, figure.data, layoutFor(figure), config).then(function (gd) {
      plots.push({ gd: gd, figure: figure });
      holder.dataset.theme = effectiveTheme();
      return gd;
    });
  }

  function redraw() {
    plots.forEach(function (entry) {
      var layout = layoutFor(entry.figure);
      // Keep what the visitor did to the ranges (zoom) across a change of theme.
      ["xaxis", "yaxis", "xaxis2"].forEach(function (axis) {
        if (entry.gd.layout[axis] && layout[axis] && entry.gd.layout[axis].range) {
          layout[axis] = merged(layout[axis], { range: entry.gd.layout[axis].range, autorange: false });
        }
      });
      window.Plotly.react(entry.gd, entry.gd.data, layout).then(function () {
        entry.gd.dataset.theme = effectiveTheme();
      });
    });
  }

  function chooseTheme(theme) {
    try {
      window.localStorage.setItem(STORAGE, theme);
    } catch (error) {
      // not kept: it still applies to this page
    }
    setThemeAttribute();
    redraw();
  }

  function themeChoice() {
    var select = document.getElementById("theme-choice");
    if (!select) {
      return;
    }
    select.value = chosenTheme();
    select.addEventListener("change", function () {
      chooseTheme(select.value);
    });
  }

  function navigation() {
    var button = document.querySelector(".nav-toggle");
    if (!button) {
      return;
    }
    button.addEventListener("click", function () {
      var open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", open ? "true" : "false");
      root.classList.toggle("nav-open", open);
    });
  }

  // <form data-confirm="question">: asks before it is sent.
  function confirmations() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) {
          event.preventDefault();
        }
      });
    });
  }

  setThemeAttribute();
  // Without JavaScript the navigation stays open: the collapsed form needs the toggle's script.
  root.classList.add("js");
  darkScheme.addEventListener("change", redraw);
  narrowScreen.addEventListener("change", redraw);
  document.addEventListener("DOMContentLoaded", function () {
    themeChoice();
    navigation();
    confirmations();
  });
  window.gsafollowup = { plot: plot, theme: effectiveTheme };
})();
