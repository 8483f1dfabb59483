/* The expression language in the browser: evaluates the syntax trees the server parses
 * (lowcode/expressions/serialize.py) with the rules of lowcode/expressions/evaluator.py.
 *
 *   LowcodeExpressions.evaluate(tree, {record: {...}, user: {...}},
 *                               {now: "2026-01-02T10:00:00+00:00", today: "2026-01-02",
 *                                timeZone: "Europe/Paris", strict: false})
 *
 * Numbers are exact decimals (decimal.js, loaded before this file) that keep their places as
 * Python's Decimal does ("1.50" + 1 is "2.50"); dates, datetimes and times are the value
 * classes of `LowcodeExpressions.values`. Null follows SQL: comparisons with null are false,
 * arithmetic and most functions give null. A type mismatch or a missing name throws an
 * Error with `code` "expression_evaluation"; a failure on a value (division by zero, a day
 * that does not exist, a number too large) makes that part null, or with `strict` throws
 * with `code` "expression_value". tests/lowcode/expression_cases.json runs here and in
 * pytest with the same results.
 *
 * Plugins add functions: LowcodeExpressions.functions.name = {evaluate: function (args, env)
 * {...}, propagatesNull: true, lazyArguments: false}; args are values (with lazyArguments,
 * functions returning them); env has today(), now() and asDate(value).
 */
(function (global) {
  "use strict";

  var PRECISION = 40;
  var DIVISION_PLACES = 10;
  var MAX_TEXT_LENGTH = 10000;
  var MAX_ROUND_PLACES = 20;
  var MAX_DAYS = 3652058; // From 0001-01-01 to 9999-12-31, as Python's dates.
  var DAY_MICROSECONDS = 86400000000;
  var UNIX_EPOCH_ORDINAL = 719163; // 1970-01-01 as Python's date.toordinal().
  var HALF_UP = global.Decimal.ROUND_HALF_UP;

  // Exact enough for any + - * % of two 40-digit numbers; results are then rounded to 40
  // significant digits as Python's decimal context does.
  var Exact = global.Decimal.clone({
    precision: 200, rounding: HALF_UP, modulo: global.Decimal.ROUND_DOWN,
    toExpNeg: -9e15, toExpPos: 9e15, minE: -9e15, maxE: 9e15
  });
  // Python divides at 100 significant digits, then rounds to 10 places.
  var Division = Exact.clone({precision: 100});

  // --- Errors ---------------------------------------------------------------------------

  function ExpressionError(code, message, position) {
    var error = new Error(message);
    error.name = "ExpressionError";
    error.code = code;
    error.position = position === undefined ? null : position;
    return error;
  }

  function evaluationError(message) {
    return ExpressionError("expression_evaluation", message);
  }

  function valueError(message) {
    return ExpressionError("expression_value", message);
  }

  // --- Values ---------------------------------------------------------------------------

  /* A number: `value` (a decimal.js number) written with `places` digits after the point. */
  function LcDecimal(value, places) {
    this.value = value;
    this.places = places;
  }
  LcDecimal.prototype.toString = function () {
    return this.value.toFixed(Math.max(this.places, 0));
  };

  function parseDecimal(text) {
    var match = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
    if (!match || (match[2] + (match[3] || "")) === "") {
      throw evaluationError("Not a number: " + text);
    }
    return new LcDecimal(new Exact(text), (match[3] || "").length - parseInt(match[4] || "0", 10));
  }

  function decimalOf(number) {
    if (typeof number === "number") {
      if (!isFinite(number)) throw evaluationError("Numbers must be finite.");
      return parseDecimal(String(number));
    }
    return parseDecimal(String(number));
  }

  /* Digits of the coefficient of `value` written with `places` places. */
  function coefficientDigits(value, places) {
    return value.isZero() ? 1 : value.e + 1 + places;
  }

  /* An exact result rounded as Python's context does (40 significant digits, half up). */
  function rounded(exact, places) {
    if (exact.isZero()) return new LcDecimal(new Exact(0), places);
    var value = exact.toSignificantDigits(PRECISION, HALF_UP);
    return new LcDecimal(value, Math.min(places, PRECISION - 1 - value.e));
  }

  /* As evaluator._plain(): no exponent (a whole number too large fails), no negative zero. */
  function plain(value) {
    if (!(value instanceof LcDecimal)) return value;
    var places = value.places;
    if (places < 0) {
      if (coefficientDigits(value.value, 0) > PRECISION) throw valueError("This number is too large.");
      places = 0;
    }
    var number = value.value.isZero() ? new Exact(0) : value.value;
    return number === value.value && places === value.places ? value : new LcDecimal(number, places);
  }

  // Proleptic Gregorian days (Howard Hinnant's algorithms), numbered as Python's toordinal().
  function ordinalOf(year, month, day) {
    var y = month <= 2 ? year - 1 : year;
    var era = Math.floor(y / 400);
    var yoe = y - era * 400;
    var doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
    var doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
    return era * 146097 + doe - 719468 + UNIX_EPOCH_ORDINAL;
  }

  function civilOf(ordinal) {
    var z = ordinal - UNIX_EPOCH_ORDINAL + 719468;
    var era = Math.floor(z / 146097);
    var doe = z - era * 146097;
    var yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365);
    var doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
    var mp = Math.floor((5 * doy + 2) / 153);
    var day = doy - Math.floor((153 * mp + 2) / 5) + 1;
    var month = mp < 10 ? mp + 3 : mp - 9;
    return [yoe + era * 400 + (month <= 2 ? 1 : 0), month, day];
  }

  function pad(number, width) {
    var text = String(number);
    while (text.length < width) text = "0" + text;
    return text;
  }

  function LcDate(ordinal) {
    var parts = civilOf(ordinal);
    this.ordinal = ordinal;
    this.year = parts[0];
    this.month = parts[1];
    this.day = parts[2];
  }
  LcDate.prototype.toString = function () {
    return pad(this.year, 4) + "-" + pad(this.month, 2) + "-" + pad(this.day, 2);
  };

  function makeDate(year, month, day) {
    var monthDays = [31, (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28,
      31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 || day > monthDays[month - 1]) {
      return null;
    }
    return new LcDate(ordinalOf(year, month, day));
  }

  function timeText(microseconds) {
    var seconds = Math.floor(microseconds / 1000000);
    var fraction = microseconds % 1000000;
    return pad(Math.floor(seconds / 3600), 2) + ":" + pad(Math.floor(seconds / 60) % 60, 2) + ":" +
      pad(seconds % 60, 2) + (fraction ? "." + pad(fraction, 6) : "");
  }

  function LcTime(microseconds) {
    this.microseconds = microseconds;
  }
  LcTime.prototype.toString = function () {
    return timeText(this.microseconds);
  };

  /* A date and time: the wall clock's day and microseconds, and its offset from UTC in
   * minutes (null: no time zone, as a naive Python datetime). */
  function LcDateTime(ordinal, microseconds, offset) {
    this.date = new LcDate(ordinal);
    this.microseconds = microseconds;
    this.offset = offset;
  }
  LcDateTime.prototype.toString = function () {
    var text = this.date.toString() + "T" + timeText(this.microseconds);
    if (this.offset === null) return text;
    var minutes = Math.abs(this.offset);
    return text + (this.offset < 0 ? "-" : "+") + pad(Math.floor(minutes / 60), 2) + ":" + pad(minutes % 60, 2);
  };
  /* The same moment in UTC (or the naive value itself). */
  LcDateTime.prototype.utc = function () {
    if (this.offset === null || this.offset === 0) return this;
    var microseconds = this.microseconds - this.offset * 60000000;
    var days = Math.floor(microseconds / DAY_MICROSECONDS);
    return new LcDateTime(this.date.ordinal + days, microseconds - days * DAY_MICROSECONDS, 0);
  };

  var TIME_PATTERN = "(\\d{2}):(\\d{2})(?::(\\d{2})(?:\\.(\\d{1,6}))?)?";

  function microsecondsOf(match, start) {
    return ((parseInt(match[start], 10) * 60 + parseInt(match[start + 1], 10)) * 60 +
      parseInt(match[start + 2] || "0", 10)) * 1000000 + parseInt(((match[start + 3] || "") + "000000").slice(0, 6), 10);
  }

  function parseDate(text) {
    var match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
    var date = match && makeDate(parseInt(match[1], 10), parseInt(match[2], 10), parseInt(match[3], 10));
    if (!date) throw evaluationError("Not a date: " + text);
    return date;
  }

  function parseTime(text) {
    var match = new RegExp("^" + TIME_PATTERN + "$").exec(text);
    if (!match) throw evaluationError("Not a time: " + text);
    return new LcTime(microsecondsOf(match, 1));
  }

  function parseDateTime(text) {
    var match = new RegExp("^(\\d{4}-\\d{2}-\\d{2})[T ]" + TIME_PATTERN + "(Z|[+-]\\d{2}:\\d{2})?$").exec(text);
    if (!match) throw evaluationError("Not a date and time: " + text);
    var offset = null;
    if (match[6] === "Z") {
      offset = 0;
    } else if (match[6]) {
      offset = (parseInt(match[6].slice(1, 3), 10) * 60 + parseInt(match[6].slice(4, 6), 10)) *
        (match[6][0] === "-" ? -1 : 1);
    }
    return new LcDateTime(parseDate(match[1]).ordinal, microsecondsOf(match, 2), offset);
  }

  function fromDate(date) {
    var milliseconds = date.getTime();
    var days = Math.floor(milliseconds / 86400000);
    return new LcDateTime(UNIX_EPOCH_ORDINAL + days, (milliseconds - days * 86400000) * 1000, 0);
  }

  function kind(value) {
    if (value === null) return "null";
    if (typeof value === "boolean") return "boolean";
    if (typeof value === "string") return "text";
    if (value instanceof LcDecimal) return "number";
    if (value instanceof LcDateTime) return "datetime";
    if (value instanceof LcDate) return "date";
    if (value instanceof LcTime) return "time";
    if (Array.isArray(value)) return "list";
    return "other";
  }

  var KIND_NAMES = {
    "null": "null", "boolean": "true/false", "number": "a number", "text": "text",
    "datetime": "a date and time", "date": "a date", "time": "a time", "list": "a list"
  };

  function typeName(value) {
    return KIND_NAMES[kind(value)] || "an unsupported value";
  }

  /* As functions.clean_value(): a value from outside, as an expression value. */
  function cleanScalar(value) {
    if (value === null || value === undefined) return null;
    if (typeof value === "number") return decimalOf(value);
    if (kind(value) !== "other" && kind(value) !== "list") return value;
    throw evaluationError("Values of this type cannot be used in expressions.");
  }

  function clean(value) {
    return Array.isArray(value) ? value.map(cleanScalar) : cleanScalar(value);
  }

  function fromJSON(json) {
    if (Array.isArray(json)) return json.map(fromJSON);
    if (json !== null && typeof json === "object") {
      if (typeof json.$decimal === "string") return parseDecimal(json.$decimal);
      if (typeof json.$date === "string") return parseDate(json.$date);
      if (typeof json.$datetime === "string") return parseDateTime(json.$datetime);
      if (typeof json.$time === "string") return parseTime(json.$time);
      throw evaluationError("Unknown tagged value.");
    }
    return clean(json);
  }

  function toJSON(value) {
    if (Array.isArray(value)) return value.map(toJSON);
    switch (kind(value)) {
      case "number": return {$decimal: value.toString()};
      case "date": return {$date: value.toString()};
      case "datetime": return {$datetime: value.toString()};
      case "time": return {$time: value.toString()};
      default: return value;
    }
  }

  // --- Value rules shared by operators and functions (functions.py) ---------------------

  function checkComparable(left, right) {
    var leftKind = kind(left);
    if (leftKind !== kind(right) || leftKind === "list" || leftKind === "other") {
      throw evaluationError("Cannot compare " + typeName(left) + " with " + typeName(right) + ".");
    }
    if (leftKind === "datetime" && (left.offset === null) !== (right.offset === null)) {
      throw evaluationError("Cannot compare dates and times with and without a time zone.");
    }
  }

  /* Text order by code point, as Python orders str (UTF-16 order differs above U+FFFF). */
  function compareText(left, right) {
    var i = 0, j = 0;
    while (i < left.length && j < right.length) {
      var a = left.codePointAt(i), b = right.codePointAt(j);
      if (a !== b) return a < b ? -1 : 1;
      i += a > 0xffff ? 2 : 1;
      j += b > 0xffff ? 2 : 1;
    }
    return (i < left.length) - (j < right.length);
  }

  function sign(number) {
    return number < 0 ? -1 : number > 0 ? 1 : 0;
  }

  /* -1, 0 or 1 for two comparable non-null values. */
  function compare(left, right) {
    checkComparable(left, right);
    switch (kind(left)) {
      case "number": return left.value.cmp(right.value);
      case "text": return compareText(left, right);
      case "boolean": return sign(Number(left) - Number(right));
      case "date": return sign(left.ordinal - right.ordinal);
      case "time": return sign(left.microseconds - right.microseconds);
      default:
        left = left.utc();
        right = right.utc();
        return sign(left.date.ordinal - right.date.ordinal) || sign(left.microseconds - right.microseconds);
    }
  }

  function asBool(value) {
    if (value === null) return false;
    if (typeof value === "boolean") return value;
    throw evaluationError("Expected true or false but got " + typeName(value) + ".");
  }

  function asNumber(value) {
    if (!(value instanceof LcDecimal)) throw evaluationError("Expected a number but got " + typeName(value) + ".");
    return value;
  }

  function asInteger(value, low, high) {
    var number = asNumber(value).value;
    if (!number.isInteger() || number.lt(low) || number.gt(high)) {
      throw valueError("Expected a whole number from " + low + " to " + high + " but got " + value + ".");
    }
    return number.toNumber();
  }

  function asText(value) {
    if (typeof value !== "string") throw evaluationError("Expected text but got " + typeName(value) + ".");
    return value;
  }

  /* Length in code points, as Python's len(). */
  function textLength(text) {
    return Array.from(text).length;
  }

  function joinText(parts) {
    var total = 0;
    parts.forEach(function (part) { total += textLength(part); });
    if (total > MAX_TEXT_LENGTH) throw valueError("Text results can have at most " + MAX_TEXT_LENGTH + " characters.");
    return parts.join("");
  }

  var dateFormats = {};

  /* The local date of an aware datetime in `timeZone`, as Django's timezone.localtime(). */
  function localDate(value, timeZone) {
    var utc = value.utc();
    if (timeZone === "UTC") return utc.date;
    if (!dateFormats[timeZone]) {
      dateFormats[timeZone] = new Intl.DateTimeFormat("en-US", {
        timeZone: timeZone, year: "numeric", month: "numeric", day: "numeric"
      });
    }
    var milliseconds = (utc.date.ordinal - UNIX_EPOCH_ORDINAL) * 86400000 + Math.floor(utc.microseconds / 1000);
    var parts = {};
    dateFormats[timeZone].formatToParts(new Date(milliseconds)).forEach(function (part) {
      parts[part.type] = parseInt(part.value, 10);
    });
    return makeDate(parts.year, parts.month, parts.day);
  }

  // --- Arithmetic (evaluator._arithmetic) -----------------------------------------------

  function arithmetic(operator, left, right) {
    if (left === null || right === null) return null;
    if (operator === "+" && (typeof left === "string" || typeof right === "string")) {
      if (typeof left !== "string" || typeof right !== "string") {
        throw evaluationError("Cannot add " + typeName(left) + " and " + typeName(right) + ": use concat() to build text.");
      }
      return joinText([left, right]);
    }
    if (kind(left) !== "number" || kind(right) !== "number") {
      throw evaluationError("“" + operator + "” needs numbers but got " + typeName(left) + " and " + typeName(right) + ".");
    }
    var a = new Exact(left.value), b = new Exact(right.value);
    var places = Math.max(left.places, right.places);
    if ((operator === "/" || operator === "%") && b.isZero()) throw valueError("Division by zero.");
    switch (operator) {
      case "+": return rounded(a.plus(b), places);
      case "-": return rounded(a.minus(b), places);
      case "*": return rounded(a.times(b), left.places + right.places);
      case "/": {
        var quotient = Division.div(a, b).toDecimalPlaces(DIVISION_PLACES, HALF_UP);
        if (coefficientDigits(quotient, DIVISION_PLACES) > PRECISION) throw valueError("This number is too large.");
        return new LcDecimal(quotient, DIVISION_PLACES);
      }
      default: {
        // The remainder takes the dividend's sign, as Python's Decimal and SQL do; Python
        // refuses it when the whole quotient has more digits than its precision.
        if (coefficientDigits(a.div(b).trunc(), 0) > PRECISION) throw valueError("This number is too large.");
        return rounded(a.mod(b), places);
      }
    }
  }

  function compareOperator(operator, left, right) {
    if (operator === "in" || operator === "not in") {
      if (!Array.isArray(right)) throw evaluationError("“in” needs a list on its right but got " + typeName(right) + ".");
      if (left === null) return false;
      var found = right.some(function (item) { return item !== null && compare(left, item) === 0; });
      return operator === "in" ? found : !found;
    }
    if (left === null || right === null) return false;
    var order = compare(left, right);
    switch (operator) {
      case "==": return order === 0;
      case "!=": return order !== 0;
      case "<": return order < 0;
      case "<=": return order <= 0;
      case ">": return order > 0;
      default: return order >= 0;
    }
  }

  // --- Functions (functions.py) ---------------------------------------------------------

  function asDateIn(env) {
    return function (value) {
      if (value instanceof LcDateTime) return value.offset === null ? value.date : localDate(value, env.timeZone);
      if (value instanceof LcDate) return value;
      throw evaluationError("Expected a date but got " + typeName(value) + ".");
    };
  }

  function integer(number) {
    return new LcDecimal(new Exact(number), 0);
  }

  function textTest(test) {
    return {evaluate: function (args) { return test(asText(args[0]), asText(args[1])); }};
  }

  function extreme(order) {
    return {
      propagatesNull: false,
      evaluate: function (args) {
        var values = args.filter(function (value) { return value !== null; });
        values.forEach(function (value) { checkComparable(values[0], value); });
        return values.reduce(function (best, value) {
          return compare(value, best) * order > 0 ? value : best;
        }, values.length ? values[0] : null);
      }
    };
  }

  var functions = {
    today: {evaluate: function (args, env) { return env.today(); }},
    now: {evaluate: function (args, env) { return env.now(); }},
    date: {
      evaluate: function (args) {
        var date = makeDate(asInteger(args[0], 1, 9999), asInteger(args[1], 1, 12), asInteger(args[2], 1, 31));
        if (!date) throw valueError("That is not a valid date.");
        return date;
      }
    },
    year: {evaluate: function (args, env) { return integer(env.asDate(args[0]).year); }},
    month: {evaluate: function (args, env) { return integer(env.asDate(args[0]).month); }},
    day: {evaluate: function (args, env) { return integer(env.asDate(args[0]).day); }},
    days_between: {
      evaluate: function (args, env) { return integer(env.asDate(args[1]).ordinal - env.asDate(args[0]).ordinal); }
    },
    add_days: {
      evaluate: function (args) {
        var value = args[0];
        if (!(value instanceof LcDate || value instanceof LcDateTime)) {
          throw evaluationError("Expected a date but got " + typeName(value) + ".");
        }
        var days = asInteger(args[1], -MAX_DAYS, MAX_DAYS);
        var isDateTime = value instanceof LcDateTime;
        if (isDateTime) value = value.utc();
        var target = (isDateTime ? value.date.ordinal : value.ordinal) - 1 + days;
        if (target < (isDateTime ? 1 : 0) || target > (isDateTime ? MAX_DAYS - 1 : MAX_DAYS)) {
          throw valueError("That is not a valid date.");
        }
        return isDateTime ? new LcDateTime(target + 1, value.microseconds, value.offset) : new LcDate(target + 1);
      }
    },
    upper: {evaluate: function (args) { return asText(args[0]).toUpperCase(); }},
    lower: {evaluate: function (args) { return asText(args[0]).toLowerCase(); }},
    trim: {evaluate: function (args) { return asText(args[0]).replace(/^ +| +$/g, ""); }},
    len: {evaluate: function (args) { return integer(textLength(asText(args[0]))); }},
    concat: {
      propagatesNull: false,
      evaluate: function (args) {
        return joinText(args.map(function (value) {
          if (value === null) return "";
          if (typeof value === "string") return value;
          if (value instanceof LcDecimal || (value instanceof LcDate)) return value.toString();
          throw evaluationError("concat() cannot join " + typeName(value) + ".");
        }));
      }
    },
    contains: textTest(function (text, part) { return text.indexOf(part) !== -1; }),
    startswith: textTest(function (text, part) { return text.slice(0, part.length) === part; }),
    endswith: textTest(function (text, part) { return part === "" || text.slice(-part.length) === part; }),
    "if": {
      propagatesNull: false,
      lazyArguments: true,
      evaluate: function (args) { return asBool(args[0]()) ? args[1]() : args[2](); }
    },
    coalesce: {
      propagatesNull: false,
      lazyArguments: true,
      evaluate: function (args) {
        for (var i = 0; i < args.length; i++) {
          var value = args[i]();
          if (value !== null) return value;
        }
        return null;
      }
    },
    is_null: {propagatesNull: false, evaluate: function (args) { return args[0] === null; }},
    abs: {
      evaluate: function (args) {
        var number = asNumber(args[0]);
        return rounded(new Exact(number.value).abs(), number.places);
      }
    },
    round: {
      evaluate: function (args) {
        var places = args.length > 1 ? asInteger(args[1], -MAX_ROUND_PLACES, MAX_ROUND_PLACES) : 0;
        var number = new Exact(asNumber(args[0]).value);
        var result;
        if (places >= 0) {
          result = number.toDecimalPlaces(places, HALF_UP);
        } else {
          var unit = new Exact(10).pow(-places);
          result = number.div(unit).toDecimalPlaces(0, HALF_UP).times(unit);
        }
        if (coefficientDigits(result, places) > PRECISION) throw valueError("This number is too large.");
        return new LcDecimal(result, places);
      }
    },
    min: extreme(-1),
    max: extreme(1)
  };

  // --- Evaluation (evaluator.py) --------------------------------------------------------

  function Evaluator(context, options) {
    var self = this;
    var timeZone = options.timeZone || "UTC";
    var now = options.now === undefined || options.now === null ? fromDate(new Date()) : options.now;
    if (typeof now === "string") now = parseDateTime(now);
    if (!(now instanceof LcDateTime) || now.offset === null) {
      throw evaluationError("“now” must be given as a date and time with a time zone.");
    }
    var today = typeof options.today === "string" ? parseDate(options.today) : options.today;
    this.record = context.record || {};
    this.user = context.user || {};
    this.strict = Boolean(options.strict);
    this.env = {
      timeZone: timeZone,
      now: function () { return now; },
      today: function () { return today || localDate(now, timeZone); }
    };
    this.env.asDate = asDateIn(this.env);
    this.value = function (node) { return self.nodeValue(node); };
  }

  Evaluator.prototype.nodeValue = function (node) {
    try {
      return plain(this.compute(node));
    } catch (error) {
      if (error.code === "expression_value" && !this.strict) return null;
      if (error.code && error.position === null) error.position = node.p;
      throw error;
    }
  };

  Evaluator.prototype.condition = function (node) {
    return asBool(this.nodeValue(node));
  };

  Evaluator.prototype.read = function (mapping, name, missing) {
    if (!Object.prototype.hasOwnProperty.call(mapping, name)) throw evaluationError(missing + name + "”.");
    return clean(mapping[name]);
  };

  Evaluator.prototype.compute = function (node) {
    var self = this;
    switch (node.t) {
      case "num": return parseDecimal(node.v);
      case "lit": return node.v;
      case "list": return node.items.map(this.value);
      case "field": return this.read(this.record, node.name, "There is no field “");
      case "user": return this.read(this.user, node.name, "The user has no attribute “");
      case "unary":
        if (node.op === "not") return !this.condition(node.arg);
        return arithmetic("-", integer(0), this.nodeValue(node.arg));
      case "binary":
        if (node.op === "and") return this.condition(node.left) && this.condition(node.right);
        if (node.op === "or") return this.condition(node.left) || this.condition(node.right);
        if ("+-*/%".indexOf(node.op) !== -1) {
          return arithmetic(node.op, this.nodeValue(node.left), this.nodeValue(node.right));
        }
        return compareOperator(node.op, this.nodeValue(node.left), this.nodeValue(node.right));
      case "call": {
        var fn = Object.prototype.hasOwnProperty.call(functions, node.fn) ? functions[node.fn] : null;
        if (!fn) throw evaluationError("Unknown function “" + node.fn + "”.");
        var args;
        if (fn.lazyArguments) {
          args = node.args.map(function (argument) { return function () { return self.nodeValue(argument); }; });
        } else {
          args = node.args.map(this.value);
          if (fn.propagatesNull !== false && args.some(function (value) { return value === null; })) return null;
        }
        // A plugin's function must not hand a foreign object back into the expression.
        return clean(fn.evaluate(args, this.env));
      }
    }
    throw new Error("Unknown node " + node.t);
  };

  /* Return the value of a serialized tree for {record: {...}, user: {...}}.
   * options: now (a datetime or ISO text with offset; default the clock), today (a date or
   * ISO text; default now's date in timeZone), timeZone (IANA name, default "UTC"), strict. */
  function evaluate(tree, context, options) {
    return new Evaluator(context || {}, options || {}).nodeValue(tree);
  }

  global.LowcodeExpressions = {
    evaluate: evaluate,
    functions: functions,
    isTrue: function (tree, context, options) { return asBool(evaluate(tree, context, options)); },
    errors: {evaluation: evaluationError, value: valueError},
    values: {
      decimal: decimalOf,
      date: function (year, month, day) {
        if (typeof year === "string") return parseDate(year);
        var date = makeDate(year, month, day);
        if (!date) throw evaluationError("Not a date.");
        return date;
      },
      datetime: parseDateTime,
      time: parseTime,
      fromDate: fromDate,
      kind: kind,
      fromJSON: fromJSON,
      toJSON: toJSON,
      Decimal: LcDecimal,
      Date: LcDate,
      DateTime: LcDateTime,
      Time: LcTime
    }
  };
})(window);
