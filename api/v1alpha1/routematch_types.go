package v1alpha1

// Request matching shared by VirtualRouter routes and GatewayRoutes: headers, paths,
// query parameters and gRPC metadata.

// HTTP methods a route may match.
var httpMethods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

// Route matching limits (App Mesh).
const (
	maxHeaderMatches   = 10
	maxQueryMatches    = 10
	maxMetadataMatches = 10
	maxMatchNameLen    = 50
	maxMatchValueLen   = 255
	minPriority        = 0
	maxPriority        = 1000
)

// MatchRange matches a value that parses as an integer in [Start, End).
type MatchRange struct {
	// Start of the range, included.
	Start int64 `json:"start"`
	// End of the range, excluded; must be above Start.
	End int64 `json:"end"`
}

// HeaderMatchMethod is how a header value is matched: exactly one member is set.
type HeaderMatchMethod struct {
	// Exact matches the whole value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Exact *string `json:"exact,omitempty"`
	// Prefix matches the start of the value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Prefix *string `json:"prefix,omitempty"`
	// Range matches an integer value.
	// +optional
	Range *MatchRange `json:"range,omitempty"`
	// Regex matches the whole value against a regular expression (RE2 syntax).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Regex *string `json:"regex,omitempty"`
	// Suffix matches the end of the value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Suffix *string `json:"suffix,omitempty"`
}

// HTTPRouteHeader matches one request header.
type HTTPRouteHeader struct {
	// Name of the header.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	Name string `json:"name"`
	// Match is how the value is matched; without it the header only has to be present.
	// +optional
	Match *HeaderMatchMethod `json:"match,omitempty"`
	// Invert matches requests that do not match.
	// +optional
	Invert *bool `json:"invert,omitempty"`
}

// HTTPPathMatch matches the request path: exactly one of exact or regex.
type HTTPPathMatch struct {
	// Exact matches the whole path.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Exact *string `json:"exact,omitempty"`
	// Regex matches the whole path against a regular expression (RE2 syntax).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Regex *string `json:"regex,omitempty"`
}

// QueryMatchMethod is how a query parameter's value is matched.
type QueryMatchMethod struct {
	// Exact matches the whole value.
	Exact *string `json:"exact,omitempty"`
}

// HTTPQueryParameters matches one query parameter.
type HTTPQueryParameters struct {
	// Name of the parameter.
	Name string `json:"name"`
	// Match is how the value is matched; without it the parameter only has to be present.
	// +optional
	Match *QueryMatchMethod `json:"match,omitempty"`
}

// GRPCRouteMetadataMatchMethod is how a gRPC metadata value is matched: exactly one
// member is set.
type GRPCRouteMetadataMatchMethod struct {
	// Exact matches the whole value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Exact *string `json:"exact,omitempty"`
	// Prefix matches the start of the value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Prefix *string `json:"prefix,omitempty"`
	// Range matches an integer value.
	// +optional
	Range *MatchRange `json:"range,omitempty"`
	// Regex matches the whole value against a regular expression (RE2 syntax).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Regex *string `json:"regex,omitempty"`
	// Suffix matches the end of the value.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=255
	// +optional
	Suffix *string `json:"suffix,omitempty"`
}

// GRPCRouteMetadata matches one gRPC metadata entry.
type GRPCRouteMetadata struct {
	// Name of the metadata key.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=50
	Name string `json:"name"`
	// Match is how the value is matched; without it the key only has to be present.
	// +optional
	Match *GRPCRouteMetadataMatchMethod `json:"match,omitempty"`
	// Invert matches requests that do not match.
	// +optional
	Invert *bool `json:"invert,omitempty"`
}
