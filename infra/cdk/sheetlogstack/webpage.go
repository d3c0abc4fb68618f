package sheetlogstack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"

	"github.com/sheetlog/sheetlog/pkg/webui"
)

// webPageMethods are the methods the web page's routes take.
var webPageMethods = []awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod_GET, awsapigatewayv2.HttpMethod_HEAD}

// webPageRoutes routes GET and HEAD of "/" and of each of the web page's
// files (exactly webui.Paths(): the handler serves those and nothing
// else) to the API function, without an authorizer: a browser must load
// the page before it can hold a token, and the files are public. The
// page's own /v1 requests carry the caller's JWT through the API's
// authorizer; nothing else becomes anonymous (any other path and method
// still meets the default authorizer, and the handler answers a route it
// does not know with the API's 404).
func (s *Stack) webPageRoutes(api awsapigatewayv2.HttpApi, integration awsapigatewayv2.HttpRouteIntegration) []awsapigatewayv2.HttpRoute {
	var routes []awsapigatewayv2.HttpRoute
	for _, path := range webui.Paths() {
		routes = append(routes, *api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path:        jsii.String(path),
			Methods:     &webPageMethods,
			Integration: integration,
			Authorizer:  awsapigatewayv2.NewHttpNoneAuthorizer(),
		})...)
	}
	for _, r := range routes {
		cdknag.NagSuppressions_AddResourceSuppressions(r, &[]*cdknag.NagPackSuppression{{
			Id: jsii.String("AwsSolutions-APIG4"),
			Reason: jsii.String("A route of the web page's static files (GET/HEAD of one fixed path, served from the " +
				"function's embedded files): a browser loads them before it can hold a token, and they hold no data. " +
				"Every /v1 route keeps the API's authorizer."),
		}}, jsii.Bool(true))
	}
	return routes
}
