// JSON Schema (draft 2020-12) validation of form data in the browser, per field, with the
// server's messages. Same verdict and same [{field, code, message}] list as
// forms_engine/schema_validation.py: validate(); the keywords are checked by the vendored
// @cfworker/json-schema, the formats by the expressions below (copies of the server's).
// An ES module: include it with <script type="module">; it sets window.LowcodeSchema.
import { Validator, format } from "../lowcode/vendor/cfworker-json-schema/index.js";

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
const DATE = /^([0-9]{4})-([0-9]{2})-([0-9]{2})$/;
const DATE_TIME = /^([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.[0-9]+)?(?:[Zz]|([+-])([0-9]{2}):([0-9]{2}))$/;
const PCHAR = "(?:[A-Za-z0-9\\-._~!$&'()*+,;=:@]|%[0-9A-Fa-f]{2})";
const URI = new RegExp(
  "^[A-Za-z][A-Za-z0-9+.\\-]*:" +
  "(?://(?:(?:[A-Za-z0-9\\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?" +
  "(?:\\[[0-9A-Fa-f:.]+\\]|\\[[Vv][0-9A-Fa-f]+\\.[A-Za-z0-9\\-._~!$&'()*+,;=:]+\\]" +
  "|(?:[A-Za-z0-9\\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?(?:/" + PCHAR + "*)*" +
  "|(?!//)(?:/?" + PCHAR + "+(?:/" + PCHAR + "*)*)?)" +
  "(?:\\?(?:" + PCHAR + "|[/?])*)?(?:#(?:" + PCHAR + "|[/?])*)?$");
const UUID = /^[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}$/;
const EMAIL_LOCAL = /^(?:"(?:[^"\\\x00-\x1f]|\\[\x20-\x7e])*"|[^\x00-\x20()<>\[\]:;@\\,."]+(?:\.[^\x00-\x20()<>\[\]:;@\\,."]+)*)$/;
const EMAIL_HOST = /^(?:[A-Za-z0-9]|[^\x00-\x7f])(?:[A-Za-z0-9\-]|[^\x00-\x7f])*(?:\.(?:[A-Za-z0-9]|[^\x00-\x7f])(?:[A-Za-z0-9\-]|[^\x00-\x7f])*)*$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$/;
const IPV6_LITERAL = /^IPv6:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$/i;

function daysInMonth(year, month) {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1];
}

function isDate(value) {
  const match = DATE.exec(value);
  if (!match) return false;
  const [year, month, day] = match.slice(1).map(Number);
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth(year, month);
}

function isDateTime(value) {
  const match = DATE_TIME.exec(value);
  if (!match || !isDate(match[1])) return false;
  const [hour, minute, second] = [match[2], match[3], match[4]].map(Number);
  const offsetHour = Number(match[6] || 0);
  const offsetMinute = Number(match[7] || 0);
  if (hour > 23 || minute > 59 || second > 60 || offsetHour > 23 || offsetMinute > 59) return false;
  if (second < 60) return true;
  // A leap second is 23:59:60 in UTC.
  const sign = { "+": 1, "-": -1 }[match[5]] || 0;
  const minutes = hour * 60 + minute - sign * (offsetHour * 60 + offsetMinute);
  return ((minutes % 1440) + 1440) % 1440 === 23 * 60 + 59;
}

function isEmail(value) {
  const at = value.lastIndexOf("@");
  if (at < 0 || !EMAIL_LOCAL.test(value.slice(0, at))) return false;
  const host = value.slice(at + 1);
  if (host.startsWith("[") && host.endsWith("]")) {
    const literal = host.slice(1, -1);
    return IPV4.test(literal) || IPV6_LITERAL.test(literal);
  }
  return EMAIL_HOST.test(host) && host.split(".").every((label) => !label.endsWith("-"));
}

const FORMATS = {
  date: isDate,
  "date-time": isDateTime,
  email: isEmail,
  uri: (value) => URI.test(value),
  uuid: (value) => UUID.test(value),
};
// Only the server's formats are asserted; an unknown format passes on both sides.
for (const name of Object.keys(format)) delete format[name];
Object.assign(format, FORMATS);

// Keywords whose own error only wraps the errors of their subschemas (reported one by one).
const WRAPPERS = new Set(["properties", "items", "prefixItems", "allOf", "if", "additionalProperties",
  "patternProperties", "dependentSchemas", "propertyNames", "contains"]);
// Keywords that report one error of their own for the failures inside them.
const SUMMARISING = new Set(["anyOf", "oneOf", "not"]);
const SCHEMA_MAPS = new Set(["properties", "patternProperties", "dependentSchemas", "$defs"]);
const SCHEMA_LISTS = new Set(["allOf", "anyOf", "oneOf", "prefixItems"]);
const SCHEMAS = new Set(["items", "if", "then", "else", "not", "additionalProperties", "contains",
  "propertyNames", "unevaluatedProperties", "unevaluatedItems"]);

// A `false` subschema fails with no keyword on the server; as {"not": {}} it fails with "not" here too.
function withoutFalse(schema) {
  if (schema === false) return { not: {} };
  if (typeof schema !== "object" || schema === null) return schema;
  const copy = { ...schema };
  for (const [keyword, value] of Object.entries(schema)) {
    if (SCHEMA_MAPS.has(keyword) && value && typeof value === "object") {
      copy[keyword] = Object.fromEntries(Object.entries(value).map(([name, sub]) => [name, withoutFalse(sub)]));
    } else if (SCHEMA_LISTS.has(keyword) && Array.isArray(value)) {
      copy[keyword] = value.map(withoutFalse);
    } else if (SCHEMAS.has(keyword)) {
      copy[keyword] = withoutFalse(value);
    }
  }
  return copy;
}

function tokens(location) {
  return location.split("/").slice(1).map((token) =>
    decodeURIComponent(token).replace(/~1/g, "/").replace(/~0/g, "~"));
}

// The schema object holding the failed keyword, or null when the error lies inside a
// subschema of anyOf/oneOf/not (those keywords report it themselves).
function failedSchema(schema, keywordLocation) {
  const path = tokens(keywordLocation);
  let node = schema;
  for (let i = 0; i < path.length - 1; ) {
    const keyword = path[i];
    if (SUMMARISING.has(keyword)) return null;
    if (SCHEMA_MAPS.has(keyword) || SCHEMA_LISTS.has(keyword)) {
      node = node[keyword][path[i + 1]];
      i += 2;
    } else {
      node = node[keyword];
      i += 1;
    }
  }
  return node;
}

function hasOwn(object, key) {
  return Object.prototype.hasOwnProperty.call(object, key);
}

function missingProperties(keyword, limit, instance) {
  if (keyword === "required") return limit.filter((name) => !hasOwn(instance, name));
  return Object.entries(limit).filter(([name]) => hasOwn(instance, name))
    .flatMap(([, dependencies]) => dependencies.filter((name) => !hasOwn(instance, name)));
}

function instanceAt(data, path) {
  return path.reduce((value, token) => value[token], data);
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// The template for "code:limit" (a string or number limit), else for the code, filled with the
// limit as String(number) writes it (which the server imitates).
function message(templates, code, limit) {
  const specific = (typeof limit === "string" || typeof limit === "number") && templates[`${code}:${limit}`];
  const template = specific || templates[code] || templates.not || code;
  return template.replace("%(limit_value)s", String(limit));
}

const validators = new WeakMap();

function validatorFor(schema) {
  if (typeof schema !== "object" || schema === null) return new Validator(withoutFalse(schema), "2020-12", false);
  if (!validators.has(schema)) validators.set(schema, new Validator(withoutFalse(schema), "2020-12", false));
  return validators.get(schema);
}

function compare(a, b) {
  return a < b ? -1 : a > b ? 1 : 0;
}

function validate(schema, data, messages) {
  const templates = messages || {};
  const result = validatorFor(schema).validate(data);
  const normalised = withoutFalse(schema);
  const seenMissing = new Map();
  const errors = new Map();
  for (const error of result.errors) {
    if (WRAPPERS.has(error.keyword)) continue;
    const node = failedSchema(normalised, error.keywordLocation);
    if (node === null) continue;
    const code = error.keyword;
    const limit = node[code];
    const path = tokens(error.instanceLocation);
    if (code === "required" || code === "dependentRequired") {
      // One error per missing property, in the keyword's order; the error goes on that property.
      const key = `${error.instanceLocation} ${error.keywordLocation}`;
      const index = seenMissing.get(key) || 0;
      seenMissing.set(key, index + 1);
      path.push(missingProperties(code, limit, instanceAt(data, path))[index]);
    }
    const field = isObject(data) && path.length ? path[0] : "";
    const entry = { field, code, message: message(templates, code, limit) };
    errors.set(JSON.stringify(entry), entry);
  }
  const properties = isObject(schema) && isObject(schema.properties) ? Object.keys(schema.properties) : [];
  const rank = (field) => (field === "" ? -1 : properties.includes(field) ? properties.indexOf(field) : properties.length + 1);
  const sorted = [...errors.values()].sort((a, b) => rank(a.field) - rank(b.field) || compare(a.field, b.field)
    || compare(a.code, b.code) || compare(a.message, b.message));
  // A message repeated on a field (missing: both required and dependentRequired) is given once.
  const unique = new Map();
  for (const error of sorted) {
    const key = JSON.stringify([error.field, error.message]);
    if (!unique.has(key)) unique.set(key, error);
  }
  return [...unique.values()];
}

window.LowcodeSchema = { validate, formats: FORMATS };
