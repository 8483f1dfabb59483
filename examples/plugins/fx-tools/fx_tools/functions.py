"""fx(amount, currency): the amount in US dollars, in Python, in the database and in the browser
(static/fx_tools/fx.js) alike. An unknown currency gives null."""

from decimal import Decimal

from django.db.models import Case, DecimalField, ExpressionWrapper, Value, When
from django.db.models.functions import Upper
from django.db.models.lookups import Exact

from lowcode.expressions.functions import NUMBERS, TEXTS, ExpressionFunction, as_number, as_text
from lowcode.expressions.types import number

#: US dollars for one unit of each currency (fixed demo rates; fx.js holds the same).
RATES = {"USD": Decimal("1"), "EUR": Decimal("1.08"), "GBP": Decimal("1.27"), "CNY": Decimal("0.14"),
         "JPY": Decimal("0.0067")}
#: Every rate is below this and has at most this many decimal places (for the result's type).
RATE_BOUND, RATE_PLACES = 2, 4


class FxFunction(ExpressionFunction):
    type = "fx"
    min_arguments = max_arguments = 2
    argument_kinds = (NUMBERS, TEXTS)
    result_kind = "number"
    browser_script = "fx_tools/fx.js"

    def result_type(self, arguments, constants):
        amount = arguments[0]
        return number(max(amount.bound, 1) * RATE_BOUND, amount.places + RATE_PLACES)

    def evaluate(self, amount, currency):
        rate = RATES.get(as_text(currency).upper())
        return None if rate is None else as_number(amount) * rate

    def to_orm(self, amount, currency):
        output = DecimalField()
        return Case(*(When(Exact(Upper(currency), Value(code)),
                           then=ExpressionWrapper(amount * Value(rate), output_field=output))
                      for code, rate in RATES.items()),
                    default=Value(None, output_field=output), output_field=output)


def health_check():
    return FxFunction().evaluate(Decimal("100"), "EUR") == Decimal("108.00")
