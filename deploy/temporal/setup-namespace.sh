#!/bin/sh
# One-shot (temporalio/admin-tools): the namespace and Steward's custom search
# attributes (STEWARD_SEARCH_ATTRIBUTES, "Name=Type ...", the same list as
# workflows/visibility.py DEV_SERVER_TYPES). Re-creating an attribute that
# exists with the same type is a no-op, so this runs on every `up`, and a
# release that adds an attribute registers it before the new workers start.
set -eu

: "${TEMPORAL_ADDRESS:?}" "${STEWARD_SEARCH_ATTRIBUTES:?}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-30d}"

attempt=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    attempt=$((attempt + 1))
    if [ "$attempt" -ge 60 ]; then
        echo "temporal at $TEMPORAL_ADDRESS is not healthy after 2 minutes" >&2
        exit 1
    fi
    sleep 2
done

if ! temporal operator namespace describe --address "$TEMPORAL_ADDRESS" \
        --namespace "$NAMESPACE" >/dev/null 2>&1; then
    temporal operator namespace create --address "$TEMPORAL_ADDRESS" \
        --namespace "$NAMESPACE" --retention "$RETENTION"
fi

# A namespace just created takes a few seconds to reach the server's
# namespace cache ("Namespace ... is not found"): retry each attribute.
for pair in $STEWARD_SEARCH_ATTRIBUTES; do
    name="${pair%%=*}"
    kind="${pair#*=}"
    attempt=0
    until temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
            --namespace "$NAMESPACE" --name "$name" --type "$kind"; do
        attempt=$((attempt + 1))
        if [ "$attempt" -ge 30 ]; then
            echo "could not register search attribute $name ($kind)" >&2
            exit 1
        fi
        sleep 2
    done
done
echo "namespace $NAMESPACE ready with search attributes: $STEWARD_SEARCH_ATTRIBUTES"
