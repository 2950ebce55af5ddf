// The /docs page: Swagger UI over this gateway's /openapi.json (a file, not an inline script, so a strict
// Content-Security-Policy can forbid inline code). No validator badge: that would call a remote service.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  deepLinking: true,
  tryItOutEnabled: false,
});
