#!/bin/sh
# The API documentation stays in step with the code: every route sproutd serves (its route table,
# printed by --list-routes) is in docs/openapi.yaml and docs/api.md, and the OpenAPI file documents
# no route that does not exist. Usage: check_routes.sh SPROUTD OPENAPI_YAML API_MD
set -u
sproutd=$1 yaml=$2 md=$3
passed=0 failed=0
ok() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }

routes=$("$sproutd" --list-routes | sort) || { fail "sproutd --list-routes failed"; routes=""; }
# The paths: section, two-space indented paths, four-space indented methods.
documented=$(awk '
  /^paths:/ { inpaths = 1; next }
  inpaths && /^[^ #]/ { inpaths = 0 }
  inpaths && /^  \/[^ ]*:[ ]*$/ { path = $1; sub(/:$/, "", path); next }
  inpaths && /^    (get|put|post|delete|patch|head|options):/ {
    m = $1; sub(/:$/, "", m); print toupper(m) " " path
  }' "$yaml" | sort)

[ -n "$routes" ] && ok || fail "no routes listed"
echo "$routes" | while IFS= read -r r; do
  [ -z "$r" ] && continue
  echo "$documented" | grep -qxF "$r" || echo "missing-yaml $r"
  grep -qF "\`$r\`" "$md" || echo "missing-md $r"
done > /tmp/check_routes.$$
echo "$documented" | while IFS= read -r r; do
  [ -z "$r" ] && continue
  echo "$routes" | grep -qxF "$r" || echo "extra-yaml $r"
done >> /tmp/check_routes.$$
while IFS= read -r line; do
  case $line in
    missing-yaml*) fail "route ${line#missing-yaml } is not in $yaml" ;;
    missing-md*) fail "route ${line#missing-md } is not in $md" ;;
    extra-yaml*) fail "$yaml documents ${line#extra-yaml }, which sproutd does not serve" ;;
  esac
done < /tmp/check_routes.$$
rm -f /tmp/check_routes.$$
n=$(echo "$routes" | grep -c .)
[ "$failed" -eq 0 ] && passed=$((passed + n))
# When PyYAML is there, the file must also parse as YAML with an openapi version.
if python3 -c 'import yaml' 2>/dev/null; then
  if python3 -c 'import sys, yaml; d = yaml.safe_load(open(sys.argv[1])); assert str(d["openapi"]).startswith("3.")' "$yaml"; then
    ok
  else
    fail "$yaml does not parse as an OpenAPI 3 document"
  fi
fi
echo "$passed passed, $failed failed"
# A run that checked nothing proves nothing: it fails too.
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
