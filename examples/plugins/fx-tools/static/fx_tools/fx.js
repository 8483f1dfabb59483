/* fx-tools: the browser twin of fx(amount, currency) (fx_tools/functions.py), same rates. */
(function () {
  "use strict";
  var RATES = {USD: "1", EUR: "1.08", GBP: "1.27", CNY: "0.14", JPY: "0.0067"};
  var values = LowcodeExpressions.values;
  LowcodeExpressions.functions.fx = {
    evaluate: function (args) {
      var amount = args[0], currency = args[1];
      if (!(amount instanceof values.Decimal) || typeof currency !== "string") {
        throw LowcodeExpressions.errors.evaluation("fx() takes a number and a currency code.");
      }
      var rate = RATES[currency.toUpperCase()];
      if (!rate) return null;
      var places = rate.indexOf(".") === -1 ? 0 : rate.length - rate.indexOf(".") - 1;
      return new values.Decimal(amount.value.times(rate), Math.max(amount.places, 0) + places);
    }
  };
})();
