/* Live behaviour of the forms drawn by forms_engine/rendering.py (issue 13, FM-3/FM-4): conditions
 * (show/hide, require, enable, computed values) with LowcodeExpressions, validation as the user
 * types with LowcodeSchema (+ required-by-condition, + the form's checks), per-field messages in
 * `id_<key>_errors`, and the wizard (one step at a time, Next/Back, a step indicator).
 *
 * It follows the server's rules (forms_engine/conditions.py and services.submit) so that the
 * browser's verdict is the server's; the server still judges every submission. Without this
 * script the server-rendered form shows every step and works as is.
 *
 *   LowcodeForms.init(element)   // every `.lc-form` in (or being) element; pages call nothing:
 *                                // the forms of the document start on DOMContentLoaded.
 */
(function (global) {
  "use strict";

  var started = new WeakMap();
  // Stands for a chosen file not uploaded yet (the server gives uploads a placeholder id too).
  var PLACEHOLDER = "00000000-0000-4000-8000-000000000000";
  var FOCUSABLE = "input:not([type=hidden]):not(:disabled), select:not(:disabled), textarea:not(:disabled), button:not(:disabled)";

  function trimmed(value) {
    value = (value || "").trim();
    return value === "" ? null : value;
  }

  function isEmpty(value) {
    return value === null || value === undefined || value === "" || value === false ||
      (Array.isArray(value) && value.length === 0);
  }

  /* The JSON value of a field as the server's widget reads it from the POST (widgets.py). */
  function postedValue(field, inputs, offset) {
    var named = inputs.filter(function (input) { return input.name === field.key; });
    switch (field.widget) {
      case "checkbox":
      case "switch":
        return named.some(function (input) { return input.checked; });
      case "multi_select": {
        var chosen = [];
        named.forEach(function (select) {
          Array.prototype.forEach.call(select.selectedOptions || [], function (option) {
            if (option.value !== "") chosen.push(option.value);
          });
        });
        return chosen.length ? chosen : null;
      }
      case "radio": {
        var checked = named.filter(function (input) { return input.checked; })[0];
        return checked ? trimmed(checked.value) : null;
      }
      case "file":
      case "image": {
        var ids = [];
        named.forEach(function (input) {
          if (input.type === "file") {
            Array.prototype.forEach.call(input.files || [], function () { ids.push(PLACEHOLDER); });
          } else if (input.checked && input.value) {
            ids.push(input.value);
          }
        });
        return ids.length ? ids : null;
      }
    }
    var text = named.length ? trimmed(named[0].value) : null;
    if (text === null) return null;
    if (field.widget === "number" || field.widget === "slider") {
      var number = text.replace(/,/g, "");
      return /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(number) && isFinite(Number(number)) ? Number(number) : text;
    }
    if (field.widget === "user" || field.widget === "department" || field.widget === "relation") {
      return /^\d+$/.test(text) ? parseInt(text, 10) : text;
    }
    if (field.widget === "datetime") {
      // datetime-local has no offset: it is the server's local time, as services.submit reads it.
      var local = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})(:\d{2}(\.\d+)?)?$/.exec(text);
      return local ? local[1] + (local[2] || ":00") + offset : text;
    }
    return text;
  }

  /* A field's JSON value as expressions read it (conditions.expression_value); null if unreadable. */
  function expressionValue(kind, value) {
    var values = global.LowcodeExpressions.values;
    if (value === null || value === undefined || (isEmpty(value) && kind !== "boolean")) return null;
    try {
      switch (kind) {
        case "number": return typeof value === "number" ? values.decimal(String(value)) : null;
        case "date": return values.date(value);
        case "datetime": return values.datetime(value);
        case "time": return values.time(value);
        case "boolean": return Boolean(value);
        case "list": return Array.isArray(value) ? value.map(String) : null;
        default: return String(value);
      }
    } catch (error) {
      return null;
    }
  }

  /* An expression's result as form data (conditions.json_value). */
  function jsonValue(value) {
    var values = global.LowcodeExpressions.values;
    if (value === null || value === undefined) return null;
    if (Array.isArray(value)) return value.map(jsonValue);
    switch (values.kind(value)) {
      case "number": return Number(value.toString());
      case "time": return value.toString().replace(/^(\d{2}:\d{2}):00$/, "$1");
      case "date":
      case "datetime": return value.toString();
      default: return value;
    }
  }

  /* The names of the fields an expression tree reads. */
  function references(tree, found) {
    found = found || [];
    if (Array.isArray(tree)) {
      tree.forEach(function (node) { references(node, found); });
    } else if (tree && typeof tree === "object") {
      if (tree.t === "field" && typeof tree.name === "string") found.push(tree.name);
      Object.keys(tree).forEach(function (key) { references(tree[key], found); });
    }
    return found;
  }

  function LiveForm(root) {
    this.root = root;
    this.config = JSON.parse(document.getElementById(root.dataset.config).textContent);
    var context = this.config.context || {};
    this.options = {now: context.now, today: context.today, timeZone: context.timeZone};
    var offset = /([+-]\d{2}:\d{2}|Z)$/.exec(context.now || "");
    this.offset = offset ? offset[1] : "Z";
    this.keys = Object.keys(this.config.fields);
    this.touched = {};
    this.schemas = {};
    this.wizard = root.classList.contains("lc-wizard") && this.config.steps.length > 1;
    this.form = root.closest("form");
    this.wrappers = {};
    this.inputs = {};
    var self = this;
    this.keys.forEach(function (key) {
      var wrapper = root.querySelector('.lc-field[data-field="' + key + '"]');
      self.wrappers[key] = wrapper;
      self.inputs[key] = wrapper ? Array.prototype.slice.call(wrapper.querySelectorAll("input, select, textarea")) : [];
      self.config.fields[key].key = key;
    });
    this.stepElements = {};
    this.config.steps.forEach(function (step) {
      self.stepElements[step.key] = root.querySelector('.lc-step[data-step="' + step.key + '"]');
    });
    this.state = this.evaluate();
    this.apply();
    if (this.wizard) this.startWizard();
    root.addEventListener("input", function (event) { self.changed(event, false); });
    root.addEventListener("change", function (event) { self.changed(event, true); });
    root.addEventListener("focusout", function (event) { self.changed(event, true); });
    if (this.form) this.form.addEventListener("submit", function (event) { self.submitting(event); });
  }

  LiveForm.prototype.fieldOf = function (element) {
    var wrapper = element.closest && element.closest(".lc-field");
    return wrapper && this.config.fields[wrapper.dataset.field] ? wrapper.dataset.field : null;
  };

  LiveForm.prototype.changed = function (event, leaving) {
    var key = this.fieldOf(event.target);
    if (key && leaving) this.touched[key] = true;
    this.state = this.evaluate();
    this.apply();
    this.showErrors(this.validate());
  };

  /* The form data as the server would receive it: each field's posted value. */
  LiveForm.prototype.read = function () {
    var self = this;
    var data = {};
    this.keys.forEach(function (key) {
      data[key] = postedValue(self.config.fields[key], self.inputs[key], self.offset);
    });
    return data;
  };

  LiveForm.prototype.holds = function (tree, values, fallback) {
    if (!tree) return fallback;
    try {
      return global.LowcodeExpressions.isTrue(tree, values, this.options);
    } catch (error) {
      return false;  // A condition that fails on its values is false (conditions.holds).
    }
  };

  LiveForm.prototype.context = function (data) {
    var self = this;
    var record = {};
    this.keys.forEach(function (key) { record[key] = expressionValue(self.config.fields[key].type, data[key]); });
    return {record: record, user: (this.config.context || {}).user || {}};
  };

  /* The state for the current inputs. Hidden fields are not posted, so on the server they read as
   * empty: evaluate again until the hidden fields no longer change. */
  LiveForm.prototype.evaluate = function () {
    var state = this.state;
    for (var pass = 0; pass < 5; pass++) {
      var next = this.evaluateOnce(state);
      if (state && this.keys.every(function (key) { return state.fields[key].visible === next.fields[key].visible; })) {
        return next;
      }
      state = next;
    }
    return state;
  };

  /* Computed values, then the state of every step, group and field (conditions.evaluate), with
   * the fields hidden in `previous` read as empty. */
  LiveForm.prototype.evaluateOnce = function (previous) {
    var self = this;
    var config = this.config;
    var data = this.read();
    if (previous) {
      this.keys.forEach(function (key) { if (!previous.fields[key].visible) data[key] = null; });
    }
    this.keys.forEach(function (key) {
      var field = config.fields[key];
      if (!field.value) return;
      var result = null;
      try {
        result = global.LowcodeExpressions.evaluate(field.value, self.context(data), self.options);
      } catch (error) {
        result = null;
      }
      data[key] = jsonValue(result);
    });
    var values = this.context(data);
    var state = {data: data, steps: {}, groups: {}, fields: {}};
    config.steps.forEach(function (step) {
      state.steps[step.key] = {visible: self.holds(step.show_when, values, true),
        enabled: self.holds(step.enable_when, values, true)};
    });
    function groupState(key) {
      if (!key) return null;
      if (!state.groups[key]) {
        var group = config.groups[key];
        var outer = groupState(group.parent) || state.steps[group.step];
        state.groups[key] = {visible: outer.visible && self.holds(group.show_when, values, true),
          enabled: outer.enabled && self.holds(group.enable_when, values, true)};
      }
      return state.groups[key];
    }
    Object.keys(config.groups).forEach(groupState);
    this.keys.forEach(function (key) {
      var field = config.fields[key];
      var outer = groupState(field.group) || state.steps[field.step] || {visible: true, enabled: true};
      state.fields[key] = {
        visible: outer.visible && self.holds(field.show_when, values, true),
        enabled: outer.enabled && !field.value && self.holds(field.enable_when, values, true),
        required: self.holds(field.require_when, values, false)
      };
    });
    return state;
  };

  LiveForm.prototype.baseRequired = function (key) {
    return (this.config.schema.required || []).indexOf(key) !== -1;
  };

  /* Draw the state: hidden attributes, disabled inputs, required marks, computed values. */
  LiveForm.prototype.apply = function () {
    var self = this;
    var state = this.state;
    Object.keys(state.groups).forEach(function (key) {
      var element = self.root.querySelector('.lc-group[data-group="' + key + '"]');
      if (element) element.hidden = !state.groups[key].visible;
    });
    this.keys.forEach(function (key) {
      var field = self.config.fields[key];
      var fieldState = state.fields[key];
      var wrapper = self.wrappers[key];
      if (!wrapper) return;
      wrapper.hidden = !fieldState.visible;
      if (field.value) self.setValue(key, state.data[key]);
      if (!field.column) {
        // Hidden or disabled inputs are not posted: the server keeps (or drops) their value.
        self.inputs[key].forEach(function (input) { input.disabled = !fieldState.visible || !fieldState.enabled; });
      }
      self.markRequired(key, self.baseRequired(key) || fieldState.required);
    });
    if (this.wizard) {
      if (this.current) this.showStep();  // Else the wizard is starting and shows its step next.
    } else {
      this.config.steps.forEach(function (step) {
        if (self.stepElements[step.key]) self.stepElements[step.key].hidden = !state.steps[step.key].visible;
      });
    }
  };

  LiveForm.prototype.setValue = function (key, value) {
    var text = value === null || value === undefined ? "" : String(value);
    this.inputs[key].forEach(function (input) {
      if (input.type === "checkbox") input.checked = Boolean(value);
      else if (input.value !== text) input.value = text;
    });
  };

  LiveForm.prototype.markRequired = function (key, required) {
    var wrapper = this.wrappers[key];
    wrapper.classList.toggle("lc-required", required);
    var label = wrapper.querySelector(":scope > label, :scope > .lc-label, :scope > label.lc-choice");
    var mark = wrapper.querySelector(".lc-required-mark");
    if (required && !mark && label) {
      mark = document.createElement("span");
      mark.className = "lc-required-mark";
      mark.setAttribute("aria-hidden", "true");
      mark.textContent = " *";
      label.appendChild(mark);
    } else if (!required && mark) {
      mark.remove();
    }
    this.inputs[key].forEach(function (input) {
      if (required) input.setAttribute("aria-required", "true");
      else input.removeAttribute("aria-required");
    });
  };

  /* The data the server would validate: visible fields, non-empty (services.submit's `cleaned`). */
  LiveForm.prototype.cleaned = function () {
    var self = this;
    var cleaned = {};
    this.keys.forEach(function (key) {
      var field = self.config.fields[key];
      var value = self.state.data[key];
      if (!self.state.fields[key].visible || field.column === "masked" || field.column === "hidden") return;
      if (!isEmpty(value) || field.type === "boolean") cleaned[key] = field.type === "boolean" ? Boolean(value) : value;
    });
    return cleaned;
  };

  LiveForm.prototype.schemaFor = function (required) {
    var cacheKey = required.join("\n");
    if (!this.schemas[cacheKey]) {
      var schema = Object.assign({}, this.config.schema, {required: required});
      this.schemas[cacheKey] = schema;
    }
    return this.schemas[cacheKey];
  };

  /* {field key or "__all__": [messages]} of the visible data (services.validate's order: the
   * schema with `required` extended by conditions, then the checks). */
  LiveForm.prototype.validate = function () {
    var self = this;
    var state = this.state;
    var cleaned = this.cleaned();
    var required = (this.config.schema.required || []).filter(function (key) {
      return !state.fields[key] || state.fields[key].visible;
    });
    this.keys.forEach(function (key) {
      if (state.fields[key].required && state.fields[key].visible && required.indexOf(key) === -1) required.push(key);
    });
    var errors = {};
    if (!global.LowcodeSchema) return errors;  // The schema module did not load: the server judges.
    global.LowcodeSchema.validate(this.schemaFor(required), cleaned, this.config.messages).forEach(function (error) {
      var key = error.field || "__all__";
      (errors[key] = errors[key] || []).push(error.message);
    });
    // The server runs the checks once the schema passes; a check is run here as soon as the
    // fields it reads pass, so its message shows while other fields are still wrong.
    var values = this.context(cleaned);
    (this.config.checks || []).forEach(function (check) {
      var target = check.field || "__all__";
      if (state.fields[target] && !state.fields[target].visible) return;
      if (references(check.expression).some(function (key) { return errors[key]; })) return;
      if (!self.holds(check.expression, values, true)) (errors[target] = errors[target] || []).push(check.message);
    });
    return errors;
  };

  /* Messages of the touched fields in their `id_<key>_errors` list, aria-invalid on their inputs. */
  LiveForm.prototype.showErrors = function (errors) {
    var self = this;
    this.keys.forEach(function (key) {
      if (!self.touched[key] || !self.wrappers[key]) return;
      var messages = self.state.fields[key].visible ? errors[key] || [] : [];
      var list = document.getElementById("id_" + key + "_errors");
      if (list) {
        list.replaceChildren.apply(list, messages.map(function (message) {
          var item = document.createElement("li");
          item.textContent = message;
          return item;
        }));
      }
      self.wrappers[key].classList.toggle("lc-invalid", messages.length > 0);
      self.inputs[key].forEach(function (input) {
        if (messages.length) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      });
    });
    var formMessages = this.touched.__all__ ? errors.__all__ || [] : [];
    var list = this.root.querySelector(".lc-live-errors");
    if (!list && formMessages.length) {
      list = document.createElement("ul");
      list.className = "lc-errors lc-form-errors lc-live-errors";
      list.setAttribute("role", "alert");
      this.root.insertBefore(list, this.root.firstChild);
    }
    if (list) {
      list.replaceChildren.apply(list, formMessages.map(function (message) {
        var item = document.createElement("li");
        item.textContent = message;
        return item;
      }));
    }
  };

  /* --- Wizard -------------------------------------------------------------------------------- */

  LiveForm.prototype.visibleSteps = function () {
    var state = this.state;
    return this.config.steps.filter(function (step) { return state.steps[step.key].visible; })
      .map(function (step) { return step.key; });
  };

  LiveForm.prototype.startWizard = function () {
    var self = this;
    this.nav = this.root.querySelector(".lc-wizard-nav");
    this.indicator = this.root.querySelector(".lc-step-indicator");
    if (this.nav) this.nav.hidden = false;
    if (this.indicator) this.indicator.hidden = false;
    this.submitButtons = this.form ? Array.prototype.slice.call(
      this.form.querySelectorAll('button[type=submit]:not([formnovalidate]), input[type=submit]:not([formnovalidate])'))
      .filter(function (button) { return !self.root.contains(button); }) : [];
    var firstError = this.root.querySelector(".lc-field .lc-errors li");
    var wanted = firstError ? firstError.closest(".lc-step").dataset.step : this.root.dataset.currentStep;
    var visible = this.visibleSteps();
    this.current = visible.indexOf(wanted) !== -1 ? wanted : visible[0];
    this.root.querySelector(".lc-next").addEventListener("click", function () { self.next(); });
    this.root.querySelector(".lc-back").addEventListener("click", function () { self.back(); });
    this.showStep();
  };

  LiveForm.prototype.showStep = function () {
    var self = this;
    var visible = this.visibleSteps();
    if (visible.indexOf(this.current) === -1) {
      // The open step was hidden by a condition: open the nearest shown one before it.
      var order = this.config.steps.map(function (step) { return step.key; });
      var before = visible.filter(function (key) { return order.indexOf(key) < order.indexOf(self.current); });
      this.current = before.length ? before[before.length - 1] : visible[0];
    }
    var position = visible.indexOf(this.current);
    this.config.steps.forEach(function (step) {
      var element = self.stepElements[step.key];
      if (element) element.hidden = step.key !== self.current;
      var item = self.indicator && self.indicator.querySelector('[data-step="' + step.key + '"]');
      if (item) {
        item.hidden = visible.indexOf(step.key) === -1;
        item.classList.toggle("lc-step-done", visible.indexOf(step.key) !== -1 && visible.indexOf(step.key) < position);
        if (step.key === self.current) item.setAttribute("aria-current", "step");
        else item.removeAttribute("aria-current");
      }
    });
    var last = position === visible.length - 1;
    this.root.querySelector(".lc-back").hidden = position <= 0;
    this.root.querySelector(".lc-next").hidden = last;
    this.submitButtons.forEach(function (button) { button.hidden = !last; });
  };

  LiveForm.prototype.stepErrors = function (errors, stepKey) {
    var self = this;
    return this.keys.filter(function (key) {
      return self.config.fields[key].step === stepKey && self.state.fields[key].visible && errors[key];
    });
  };

  LiveForm.prototype.focusField = function (key) {
    var target = this.inputs[key].filter(function (input) { return !input.disabled && input.type !== "hidden"; })[0];
    if (target) target.focus();
  };

  LiveForm.prototype.next = function () {
    var self = this;
    this.state = this.evaluate();
    var errors = this.validate();
    this.keys.forEach(function (key) { if (self.config.fields[key].step === self.current) self.touched[key] = true; });
    this.showErrors(errors);
    var wrong = this.stepErrors(errors, this.current);
    if (wrong.length) {
      this.focusField(wrong[0]);
      return;
    }
    var visible = this.visibleSteps();
    this.current = visible[Math.min(visible.indexOf(this.current) + 1, visible.length - 1)];
    this.apply();
    this.focusStep();
  };

  LiveForm.prototype.back = function () {
    var visible = this.visibleSteps();
    this.current = visible[Math.max(visible.indexOf(this.current) - 1, 0)];
    this.apply();
    this.focusStep();
  };

  LiveForm.prototype.focusStep = function () {
    var element = this.stepElements[this.current];
    var target = element && Array.prototype.filter.call(element.querySelectorAll(FOCUSABLE), function (input) {
      return !input.closest("[hidden]");
    })[0];
    if (target) target.focus();
  };

  /* Submitting: a draft goes as is; otherwise not while the visible data is invalid (the
   * server still decides). In a wizard, Enter before the last step means Next. */
  LiveForm.prototype.submitting = function (event) {
    var self = this;
    var submitter = event.submitter;
    if (submitter && (submitter.formNoValidate || submitter.name === "save_draft")) return;
    this.state = this.evaluate();
    this.apply();
    if (this.wizard) {
      var visible = this.visibleSteps();
      if (visible.indexOf(this.current) < visible.length - 1) {
        event.preventDefault();
        this.next();
        return;
      }
    }
    var errors = this.validate();
    this.keys.forEach(function (key) { self.touched[key] = true; });
    this.touched.__all__ = true;
    this.showErrors(errors);
    var wrong = this.keys.filter(function (key) { return self.state.fields[key].visible && errors[key]; });
    if (!wrong.length && !errors.__all__) return;
    event.preventDefault();
    if (wrong.length && this.wizard) {
      this.current = this.config.fields[wrong[0]].step;
      this.apply();
    }
    if (wrong.length) this.focusField(wrong[0]);
  };

  function init(element) {
    var forms = element.matches && element.matches(".lc-form") ? [element] :
      Array.prototype.slice.call((element || document).querySelectorAll(".lc-form"));
    forms.forEach(function (root) {
      if (!started.has(root) && root.dataset.config && document.getElementById(root.dataset.config)) {
        started.set(root, new LiveForm(root));
      }
    });
  }

  global.LowcodeForms = {init: init};
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(document); });
  } else {
    init(document);
  }
})(window);
