// Command cdk is the CDK app of sheetlog: `cdk synth` and `cdk deploy` run
// it (cdk.json says `go run .`). Knobs come from the context; see
// sheetlogstack.PropsFromContext.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/sheetlog/sheetlog/infra/cdk/sheetlogstack"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	props, err := sheetlogstack.PropsFromContext(app.Node())
	if err == nil {
		_, err = sheetlogstack.New(app, sheetlogstack.StackName(app.Node()), props)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "sheetlog cdk app:", err)
		jsii.Close()
		os.Exit(1)
	}
	app.Synth(nil)
}
