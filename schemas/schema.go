package schemas

import (
	"bytes"
	_ "embed" // for the JSON Schema
)

//go:embed session-event.v1.json
var jsonSchema []byte

// JSONSchemaID is the $id of the v1 event JSON Schema.
const JSONSchemaID = "https://github.com/vigilhq/vigil/schemas/session-event.v1.json"

// JSONSchema returns a copy of the JSON Schema (draft 2020-12) of the v1 event, session-event.v1.json.
func JSONSchema() []byte {
	return bytes.Clone(jsonSchema)
}
