// Command ollama_render renders a chat through a Modelfile TEMPLATE with Go's text/template,
// driven the way Ollama drives templates written with .System/.Prompt/.Response (no .Messages):
//
//   - consecutive messages of one role are joined with a blank line;
//   - each finished turn (system?, user, assistant) is one execution of the template;
//   - the last turn runs a copy of the template cut right after {{ .Response }}, so the prompt
//     ends exactly where the model starts to write.
//
// Input on stdin: {"template": "...", "messages": [{"role": "user", "content": "..."}, ...]}.
// Output on stdout: the rendered prompt, byte for byte.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"text/template"
	"text/template/parse"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type request struct {
	Template string    `json:"template"`
	Messages []message `json:"messages"`
}

type turn struct{ system, prompt, response string }

func (t turn) values() map[string]any {
	return map[string]any{"System": t.system, "Prompt": t.prompt, "Response": t.response}
}

// joinSameRole merges runs of messages that share a role.
func joinSameRole(msgs []message) []message {
	var out []message
	for _, m := range msgs {
		if n := len(out); n > 0 && out[n-1].Role == m.Role {
			out[n-1].Content += "\n\n" + m.Content
			continue
		}
		out = append(out, m)
	}
	return out
}

// turns groups messages into template executions: a new turn starts when a system message
// follows a user or assistant message, or a user message follows an answer.
func turns(msgs []message) []turn {
	var done []turn
	var cur turn
	for _, m := range joinSameRole(msgs) {
		switch m.Role {
		case "system":
			if cur.prompt != "" || cur.response != "" {
				done, cur = append(done, cur), turn{}
			}
			cur.system = m.Content
		case "user":
			if cur.response != "" {
				done, cur = append(done, cur), turn{}
			}
			cur.prompt = m.Content
		case "assistant":
			cur.response = m.Content
		}
	}
	return append(done, cur)
}

// cutter drops every node that comes after the first {{ .Response }} in document order.
type cutter struct{ seen bool }

func (c *cutter) list(l *parse.ListNode) *parse.ListNode {
	if l == nil {
		return nil
	}
	kept := l.Nodes[:0:0]
	for _, n := range l.Nodes {
		if c.seen {
			break
		}
		if n = c.node(n); n != nil {
			kept = append(kept, n)
		}
	}
	l.Nodes = kept
	return l
}

func (c *cutter) node(n parse.Node) parse.Node {
	switch n := n.(type) {
	case *parse.ListNode:
		return c.list(n)
	case *parse.ActionNode:
		c.pipe(n.Pipe)
	case *parse.IfNode:
		c.branch(&n.BranchNode)
	case *parse.RangeNode:
		c.branch(&n.BranchNode)
	case *parse.WithNode:
		c.branch(&n.BranchNode)
	}
	return n
}

func (c *cutter) branch(b *parse.BranchNode) {
	c.pipe(b.Pipe)
	b.List = c.list(b.List)
	if c.seen {
		b.ElseList = nil
		return
	}
	b.ElseList = c.list(b.ElseList)
}

func (c *cutter) pipe(p *parse.PipeNode) {
	if p == nil {
		return
	}
	for _, cmd := range p.Cmds {
		for _, arg := range cmd.Args {
			if f, ok := arg.(*parse.FieldNode); ok {
				for _, id := range f.Ident {
					if id == "Response" {
						c.seen = true
					}
				}
			}
		}
	}
}

func render(req request) (string, error) {
	tmpl, err := template.New("").Option("missingkey=zero").Parse(req.Template)
	if err != nil {
		return "", err
	}
	all := turns(req.Messages)
	var out bytes.Buffer
	for _, t := range all[:len(all)-1] {
		if err := tmpl.Execute(&out, t.values()); err != nil {
			return "", err
		}
	}
	cut := (&cutter{}).list(tmpl.Tree.Root.CopyList())
	last, err := template.New("").Option("missingkey=zero").AddParseTree("", &parse.Tree{Root: cut})
	if err != nil {
		return "", err
	}
	if err := last.Execute(&out, all[len(all)-1].values()); err != nil {
		return "", err
	}
	return out.String(), nil
}

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "bad request:", err)
		os.Exit(2)
	}
	out, err := render(req)
	if err != nil {
		fmt.Fprintln(os.Stderr, "render:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}
