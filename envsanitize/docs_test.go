package envsanitize_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/dockssh/dockssh/envsanitize"
)

var printDenyTable = flag.Bool("denytable", false, "print the deny list as the Markdown tables of docs/envsanitize.md")

// groups lists the deny groups in the order docs/envsanitize.md has them.
var groups = []envsanitize.Group{
	envsanitize.GroupLoader, envsanitize.GroupLibc, envsanitize.GroupShell,
	envsanitize.GroupFunction, envsanitize.GroupInterpreter, envsanitize.GroupToolkit,
	envsanitize.GroupTLS, envsanitize.GroupTerminal, envsanitize.GroupAuth,
	envsanitize.GroupTool, envsanitize.GroupUserChoice, envsanitize.GroupSession,
}

// denyTableRow renders one rule as a row of the docs' tables.
func denyTableRow(r envsanitize.DenyRule) string {
	return fmt.Sprintf("| `%s` | %s | %s |", r.Pattern, strings.ReplaceAll(r.Why, "|", `\|`), r.Source)
}

// denyTables renders the deny list, one table per group.
func denyTables() string {
	var b strings.Builder
	for _, g := range groups {
		fmt.Fprintf(&b, "### %s\n\n| name | why | source |\n|---|---|---|\n", g)
		for _, r := range envsanitize.DenyList() {
			if r.Group == g {
				b.WriteString(denyTableRow(r) + "\n")
			}
		}
		b.WriteString("\n")
	}
	return b.String()
}

// TestDocsListEveryDeniedName keeps docs/envsanitize.md in step with the
// code: every rule's row, reason and source included, must be there.
// Regenerate with: go test ./envsanitize -run TestDocsListEveryDeniedName -denytable
func TestDocsListEveryDeniedName(t *testing.T) {
	if *printDenyTable {
		fmt.Print(denyTables())
	}
	doc, err := os.ReadFile("../docs/envsanitize.md")
	if err != nil {
		t.Fatalf("read docs: %v", err)
	}
	for _, r := range envsanitize.DenyList() {
		if !strings.Contains(string(doc), denyTableRow(r)+"\n") {
			t.Errorf("docs/envsanitize.md lacks the row\n%s", denyTableRow(r))
		}
	}
	for _, g := range groups {
		if !strings.Contains(string(doc), "### "+g.String()+"\n") {
			t.Errorf("docs/envsanitize.md lacks the heading %q", "### "+g.String())
		}
	}
	// Every group of the table is in the docs' order list.
	for _, r := range envsanitize.DenyList() {
		found := false
		for _, g := range groups {
			found = found || g == r.Group
		}
		if !found {
			t.Errorf("rule %q has group %v, missing from the docs' group list", r.Pattern, r.Group)
		}
	}
}
