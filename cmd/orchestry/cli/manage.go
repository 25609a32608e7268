package cli

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/orchestry/orchestry/pkg/events"
)

func (a *app) deleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete app NAME | delete route APP ID | delete instance APP ID",
		Short: "Delete an app, a routing rule or an instance",
		Long: `delete removes an app (DELETE /v1/apps/{name}), one of its routing rules
(DELETE /v1/apps/{app}/routes/{id}) or one of its instances
(DELETE /v1/apps/{app}/instances/{id}). A missing one exits with code 5.`,
		Example: `  orchestry delete app shop
  orchestry delete route shop canary
  orchestry delete instance shop web-1`,
		Args:              cobra.RangeArgs(2, 3),
		ValidArgsFunction: a.completeKindApp("app", "route", "instance"),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			kind, ok := resources[strings.ToLower(args[0])]
			if !ok {
				return usageErrorf("unknown resource %q (use app, route or instance)", args[0])
			}
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			switch kind {
			case "apps":
				if len(args) != 2 {
					return usageErrorf("usage: orchestry delete app NAME")
				}
				if err := c.DeleteApp(ctx, args[1]); err != nil {
					return fmt.Errorf("delete app %s: %w", args[1], err)
				}
				fmt.Fprintf(a.stdout(), "app/%s deleted\n", args[1])
			case "routes":
				if len(args) != 3 {
					return usageErrorf("usage: orchestry delete route APP ID")
				}
				if err := c.DeleteRoute(ctx, args[1], args[2]); err != nil {
					return fmt.Errorf("delete route %s of %s: %w", args[2], args[1], err)
				}
				fmt.Fprintf(a.stdout(), "route %s/%s deleted\n", args[1], args[2])
			case "instances":
				if len(args) != 3 {
					return usageErrorf("usage: orchestry delete instance APP ID")
				}
				return a.removeInstance(cmd, args[1], args[2])
			default:
				return usageErrorf("cannot delete %s (use app, route or instance)", kind)
			}
			return nil
		}),
	}
}

func (a *app) instancesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "instances",
		Short: "Register and deregister an app's instances",
		Long: `instances adds (POST /v1/apps/{app}/instances) and removes
(DELETE /v1/apps/{app}/instances/{id}) backends of an app. To list them:
orchestry get instances APP.`,
		Example: `  orchestry instances add shop --id web-1 --address 10.0.0.5:8080 --weight 2
  orchestry instances add shop --id web-1 --address 10.0.0.5:8080 --draining
  orchestry instances remove shop web-1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var in events.Instance
	var addr string
	add := &cobra.Command{
		Use:   "add APP --id ID --address HOST:PORT",
		Short: "Register an instance (or replace the one with the same id)",
		Example: `  orchestry instances add shop --id web-1 --address 10.0.0.5:8080
  orchestry instances add shop --id web-2 --address 10.0.0.6:8080 --weight 3 --backup`,
		Args:              exactArgs("APP"),
		ValidArgsFunction: a.completeApp,
		RunE: run(func(cmd *cobra.Command, args []string) error {
			if in.ID == "" {
				return usageErrorf("--id is required")
			}
			host, port, err := SplitAddress(addr)
			if err != nil {
				return usageErrorf("--address: %v", err)
			}
			in.IP, in.Port = host, port
			c, err := a.apiClient()
			if err != nil {
				return err
			}
			res, created, err := c.AddInstance(cmd.Context(), args[0], in)
			if err != nil {
				return fmt.Errorf("add instance %s to %s: %w", in.ID, args[0], err)
			}
			verb := "replaced"
			if created {
				verb = "registered"
			}
			fmt.Fprintf(a.stdout(), "instance %s/%s %s at %s (revision %d)\n", args[0], in.ID, verb, address(res.Instance), res.Revision)
			return nil
		}),
	}
	f := add.Flags()
	f.StringVar(&in.ID, "id", "", "instance id (required)")
	f.StringVar(&addr, "address", "", "HOST:PORT the instance listens on (required)")
	f.IntVar(&in.Weight, "weight", 0, "NGINX weight (0: the default, 1)")
	f.BoolVar(&in.Backup, "backup", false, "serve only when no other instance can")
	f.BoolVar(&in.Draining, "draining", false, "take no new requests (before stopping it)")

	remove := &cobra.Command{
		Use:               "remove APP ID",
		Aliases:           []string{"rm", "delete"},
		Short:             "Deregister an instance",
		Example:           `  orchestry instances remove shop web-1`,
		Args:              exactArgs("APP", "ID"),
		ValidArgsFunction: a.completeApp,
		RunE: run(func(cmd *cobra.Command, args []string) error {
			return a.removeInstance(cmd, args[0], args[1])
		}),
	}
	cmd.AddCommand(add, remove)
	return cmd
}

func (a *app) removeInstance(cmd *cobra.Command, app, id string) error {
	c, err := a.apiClient()
	if err != nil {
		return err
	}
	if err := c.RemoveInstance(cmd.Context(), app, id); err != nil {
		return fmt.Errorf("remove instance %s of %s: %w", id, app, err)
	}
	fmt.Fprintf(a.stdout(), "instance %s/%s deregistered\n", app, id)
	return nil
}

// SplitAddress splits "host:port" ("[v6]:port") into the host and a port
// number.
func SplitAddress(addr string) (string, int, error) {
	if addr == "" {
		return "", 0, fmt.Errorf("HOST:PORT is required")
	}
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not HOST:PORT: %w", addr, err)
	}
	if host == "" {
		return "", 0, fmt.Errorf("%q has no host", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("%q: the port must be a number from 1 to 65535", addr)
	}
	return host, port, nil
}
