#!/usr/bin/env bash
# What `make run` shows. The serving path (`trove serve`) is being built (issue #3); until it lands this
# validates the example rules and explains a few requests, which is everything Trove can do today.
set -euo pipefail
config="${1:-rules/example.yaml}"
trove=.build/release/trove

echo "==> trove check --config $config"
"$trove" check --config "$config" || exit 1
echo
for request in "GET /api/v1/events/42" "GET /api/v1/me/stats" "PUT /api/v1/events/42"; do
  echo "==> trove explain --config $config '$request' -H 'Authorization: Bearer demo'"
  "$trove" explain --config "$config" "$request" -H 'Authorization: Bearer demo'
  echo
done
echo "Trove cannot serve traffic yet: 'trove serve' arrives with issue #3."
echo "Next: edit $config and run 'make run' again, or try the seed files in rules/."
