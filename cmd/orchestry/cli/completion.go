package cli

import (
	"context"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// resourceNames are the resources get offers, for completion.
var resourceNames = []string{"apps", "instances", "routes", "certs", "nodes"}

// appNames lists the apps for shell completion, quietly: a completion
// that cannot reach the API offers nothing.
func (a *app) appNames(ctx context.Context, prefix string) []string {
	c, err := a.apiClient()
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	apps, _, err := c.Apps(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range apps {
		if strings.HasPrefix(v.App.Metadata.Name, prefix) {
			out = append(out, v.App.Metadata.Name)
		}
	}
	return out
}

// completeGet completes "get KIND [APP]".
func (a *app) completeGet(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	switch {
	case len(args) == 0:
		return resourceNames, cobra.ShellCompDirectiveNoFileComp
	case len(args) == 1 && (resources[args[0]] == "apps" || resources[args[0]] == "instances" || resources[args[0]] == "routes"):
		return a.appNames(cmd.Context(), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}

// completeKindApp completes "KIND APP" of describe and delete.
func (a *app) completeKindApp(kinds ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		switch len(args) {
		case 0:
			return kinds, cobra.ShellCompDirectiveNoFileComp
		case 1:
			return a.appNames(cmd.Context(), toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeApp completes a first argument that is an app.
func (a *app) completeApp(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return a.appNames(cmd.Context(), toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveNoFileComp
}
