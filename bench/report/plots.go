package main

// The plots: the empirical distribution of each latency sample group, and
// the x/y series.

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/orchestry/orchestry/bench/result"
)

var palette = []color.Color{
	color.RGBA{0x1f, 0x77, 0xb4, 0xff}, color.RGBA{0xd6, 0x27, 0x28, 0xff}, color.RGBA{0x2c, 0xa0, 0x2c, 0xff},
	color.RGBA{0xff, 0x7f, 0x0e, 0xff}, color.RGBA{0x94, 0x67, 0xbd, 0xff}, color.RGBA{0x8c, 0x56, 0x4b, 0xff},
}

// drawPlots draws f's sample groups and series into dir and returns the
// files' names, relative to dir.
func drawPlots(f result.File, dir string) ([]string, error) {
	var out []string
	var groups []string
	for _, s := range f.Samples {
		if !slices.Contains(groups, s.Plot) {
			groups = append(groups, s.Plot)
		}
	}
	for _, g := range groups {
		var ss []result.Sample
		for _, s := range f.Samples {
			if s.Plot == g && len(s.Values) > 0 {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			continue
		}
		p, err := cdf(g, ss)
		if err != nil {
			return nil, err
		}
		name := g + ".png"
		if err := save(p, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	groups = groups[:0]
	for _, s := range f.Series {
		if !slices.Contains(groups, s.Plot) {
			groups = append(groups, s.Plot)
		}
	}
	for _, g := range groups {
		var ss []result.Series
		for _, s := range f.Series {
			if s.Plot == g && len(s.X) > 0 {
				ss = append(ss, s)
			}
		}
		if len(ss) == 0 {
			continue
		}
		p, err := lines(g, ss)
		if err != nil {
			return nil, err
		}
		name := g + ".png"
		if err := save(p, filepath.Join(dir, name)); err != nil {
			return nil, err
		}
		out = append(out, name)
	}
	return out, nil
}

// cdf plots the empirical cumulative distribution of each sample, on a
// logarithmic axis when every value is positive and the largest is more
// than 20 times the smallest.
func cdf(title string, ss []result.Sample) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title + " (cumulative distribution)"
	p.X.Label.Text = ss[0].Unit
	p.Y.Label.Text = "fraction of trials or requests ≤ x"
	p.Y.Min, p.Y.Max = 0, 1
	lo, hi := 0.0, 0.0
	for i, s := range ss {
		v := slices.Clone(s.Values)
		slices.Sort(v)
		if i == 0 || v[0] < lo {
			lo = v[0]
		}
		hi = max(hi, v[len(v)-1])
		// At most 2,000 points per line.
		step := max(1, len(v)/2000)
		xys := plotter.XYs{{X: v[0], Y: 0}}
		for j := 0; j < len(v); j += step {
			xys = append(xys, plotter.XY{X: v[j], Y: float64(j+1) / float64(len(v))})
		}
		xys = append(xys, plotter.XY{X: v[len(v)-1], Y: 1})
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", title, err)
		}
		l.Color = palette[i%len(palette)]
		l.Width = vg.Points(1.5)
		l.StepStyle = plotter.PostStep
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("%s (n=%d)", s.Name, len(v)), l)
	}
	if lo > 0 && hi/lo > 20 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	} else {
		p.X.Min = min(0, lo)
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.XOffs = -vg.Points(5)
	p.Legend.YOffs = vg.Points(5)
	p.Add(plotter.NewGrid())
	return p, nil
}

// lines plots the series as lines with points, x on a logarithmic axis
// when every x is positive and the largest is more than 20 times the
// smallest.
func lines(title string, ss []result.Series) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = ss[0].XLabel
	p.Y.Label.Text = ss[0].YLabel
	lo, hi := ss[0].X[0], ss[0].X[0]
	for i, s := range ss {
		var xys plotter.XYs
		for j := range min(len(s.X), len(s.Y)) {
			xys = append(xys, plotter.XY{X: s.X[j], Y: s.Y[j]})
			lo, hi = min(lo, s.X[j]), max(hi, s.X[j])
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", title, err)
		}
		c := palette[i%len(palette)]
		l.Color, pts.Color = c, c
		pts.Shape = draw.CircleGlyph{}
		p.Add(l, pts)
		p.Legend.Add(s.Name, l, pts)
	}
	if lo > 0 && hi/lo > 20 {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p, nil
}

func save(p *plot.Plot, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := p.Save(7*vg.Inch, 4*vg.Inch, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}
